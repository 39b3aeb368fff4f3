"""Names shared by the rasa-sdk actions, the embedded dialogue and the Rasa project files.

Rasa matches these by string, so they live in one place; ``tests/bot/test_rasa_project.py`` checks
that ``domain.yml`` and the training data use exactly these names.
"""

# Intents (bot/data/nlu.yml)
INTENT_GREET = "greet"
INTENT_GOODBYE = "goodbye"
INTENT_THANK = "thank"
INTENT_HELP = "help"
INTENT_ASK_CONTACT = "ask_contact"
INTENT_ASK_OVERVIEW = "ask_overview"
INTENT_ASK_ITEM_BY_NUMBER = "ask_item_by_number"
INTENT_ASK_NOTICE = "ask_notice"
INTENT_OUT_OF_SCOPE = "out_of_scope"
INTENT_ASK_FOLLOW_UP = "ask_follow_up"
INTENT_AFFIRM = "affirm"
INTENT_BOT_CHALLENGE = "bot_challenge"
INTENT_CHITCHAT = "chitchat"
INTENT_COMPLAIN = "complain"
INTENT_REQUEST_HUMAN = "request_human"
INTENT_NOT_UNDERSTOOD = "not_understood"
INTENT_NLU_FALLBACK = "nlu_fallback"

INTENTS = (
    INTENT_GREET,
    INTENT_GOODBYE,
    INTENT_THANK,
    INTENT_HELP,
    INTENT_ASK_CONTACT,
    INTENT_ASK_OVERVIEW,
    INTENT_ASK_ITEM_BY_NUMBER,
    INTENT_ASK_NOTICE,
    INTENT_OUT_OF_SCOPE,
    INTENT_ASK_FOLLOW_UP,
    INTENT_AFFIRM,
    INTENT_BOT_CHALLENGE,
    INTENT_CHITCHAT,
    INTENT_COMPLAIN,
    INTENT_REQUEST_HUMAN,
    INTENT_NOT_UNDERSTOOD,
)
# Turns that are not questions for the notice: each gets a short reply, never a quote.
SMALL_TALK_INTENTS = (INTENT_GREET, INTENT_GOODBYE, INTENT_THANK, INTENT_AFFIRM, INTENT_BOT_CHALLENGE,
                      INTENT_CHITCHAT)

# Entities
ENTITY_ITEM_NUMBER = "item_number"

# Slots: what follow-up questions resolve against
SLOT_LAST_ITEM = "last_item"  # anchor of the item last answered, e.g. "item-16"
SLOT_LAST_TOPIC = "last_topic"  # anchor of its topic, e.g. "topic-4"
SLOT_LAST_QUESTION = "last_question"
SLOT_ITEM_NUMBER = "item_number"
SLOT_LAST_ANCHOR = "last_anchor"  # the passage last answered from (any kind: item-16, part-1-p2, contact)
SLOT_LAST_DOC = "last_doc"  # its notice
SLOT_LAST_QUOTED = "last_quoted"  # the spans quoted from it so far ("5124-5159"), for 还有呢
# The outcome of the latest turn (what a test story checks): the passage cited, or a decline.
SLOT_CITED = "cited"
SLOT_DECLINED = "declined"

# Questions the notice of the conversation answers, for the help and default replies' wording.
SLOT_EXAMPLE_QUESTION = "example_question"
SLOT_EXAMPLE_ITEM = "example_item"

SLOTS = (SLOT_LAST_ITEM, SLOT_LAST_TOPIC, SLOT_LAST_QUESTION, SLOT_ITEM_NUMBER, SLOT_LAST_ANCHOR, SLOT_LAST_DOC,
         SLOT_LAST_QUOTED, SLOT_CITED, SLOT_DECLINED, SLOT_EXAMPLE_QUESTION, SLOT_EXAMPLE_ITEM)
MAX_QUOTED_SPANS = 20

# Custom actions (served by the rasa-sdk action server, python -m rasa_sdk --actions bot.actions)
ACTION_ANSWER_FROM_NOTICE = "action_answer_from_notice"
ACTION_OVERVIEW = "action_overview"
ACTION_ITEM_BY_NUMBER = "action_item_by_number"
ACTION_CONTACT = "action_contact"
ACTION_COMPLAINT = "action_complaint"
ACTION_HUMAN_HANDOFF = "action_human_handoff"

CUSTOM_ACTIONS = (
    ACTION_ANSWER_FROM_NOTICE,
    ACTION_OVERVIEW,
    ACTION_ITEM_BY_NUMBER,
    ACTION_CONTACT,
    ACTION_COMPLAINT,
    ACTION_HUMAN_HANDOFF,
)

# Responses (domain.yml)
UTTER_GREET = "utter_greet"
UTTER_GOODBYE = "utter_goodbye"
UTTER_THANK = "utter_you_are_welcome"
UTTER_HELP = "utter_help"
UTTER_OUT_OF_SCOPE = "utter_out_of_scope"
UTTER_DEFAULT = "utter_default"
UTTER_ACKNOWLEDGE = "utter_acknowledge"
UTTER_IAMABOT = "utter_iamabot"
UTTER_CHITCHAT = "utter_chitchat"
UTTER_REPHRASE = "utter_rephrase"
UTTER_COMPLAINT = "utter_complaint"
UTTER_HUMAN_HANDOFF = "utter_human_handoff"

RESPONSES = (UTTER_GREET, UTTER_GOODBYE, UTTER_THANK, UTTER_HELP, UTTER_OUT_OF_SCOPE, UTTER_DEFAULT,
             UTTER_ACKNOWLEDGE, UTTER_IAMABOT, UTTER_CHITCHAT, UTTER_REPHRASE, UTTER_COMPLAINT, UTTER_HUMAN_HANDOFF)
