"""rasa-sdk custom actions: ``python -m rasa_sdk --actions bot.actions`` serves them on port 5055.

The same classes run in-process in the embedded dialogue (bot/dialogue.py).
"""

from bot.actions.notice import (  # noqa: F401  (the action server registers every Action subclass)
    ActionAnswerFromNotice,
    ActionComplaint,
    ActionContact,
    ActionHumanHandoff,
    ActionItemByNumber,
    ActionOverview,
    ChannelsAction,
    NoticeAction,
    set_default_answerer,
)
