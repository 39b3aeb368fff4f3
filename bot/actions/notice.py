"""The custom actions. Each utters the answer and a ``json_message`` (Rasa's ``custom`` payload)
with the citations, and sets the slots that follow-up questions resolve against."""

from __future__ import annotations

import abc
import threading
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import constants as C
from bot.answer import Answer, Answerer, parse_item_number

_default: Answerer | None = None
_default_lock = threading.Lock()


def set_default_answerer(answerer: Answerer | None) -> None:
    """Give actions built without an answerer (as the action server builds them) this one."""
    global _default
    _default = answerer


def _default_answerer() -> Answerer:
    # The rasa-sdk action server instantiates actions with no arguments; it gets the answerer
    # the CLI and the web server use, built once from the same settings.
    global _default
    with _default_lock:
        if _default is None:
            from bot.runtime import build_bot

            bot = build_bot()
            bot.retriever.warm_up()
            _default = bot.answerer
        return _default


def citations_payload(answer: Answer) -> dict:
    """The ``custom`` payload: citations (JSON contract), abstention, suggestions."""
    citations = []
    for c in answer.citations[:3]:
        data = c.to_dict()
        # Where the quoted sentences stand in the notice text, so a page can highlight them.
        data["spans"] = [list(s) for s in c.quote_spans]
        citations.append(data)
    return {
        "citations": citations,
        "abstained": answer.abstained,
        "suggestions": answer.suggestions,
        "kind": answer.kind,
    }


class NoticeAction(Action, abc.ABC):
    """Base of the notice actions: the answerer is injected, never built inside the action.

    :param answerer: the :class:`Answerer` to use; ``None`` means the process-wide default
        (what the rasa-sdk action server gets).
    """

    def __init__(self, answerer: Answerer | None = None) -> None:
        self._answerer = answerer

    @property
    def answerer(self) -> Answerer:
        return self._answerer or _default_answerer()

    @abc.abstractmethod
    def answer(self, tracker: Tracker) -> Answer:
        """Compute the answer for the tracker's latest message."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        answer = self.answer(tracker)
        dispatcher.utter_message(text=answer.text, json_message=citations_payload(answer))
        return self.slot_events(tracker, answer)

    def slot_events(self, tracker: Tracker, answer: Answer) -> list[dict]:
        events = [SlotSet(C.SLOT_LAST_QUESTION, answer.question or None)]
        if answer.citations and not answer.abstained:
            anchor = answer.citations[0].anchor
            if anchor.startswith("item-"):
                notice, _ = self.answerer.primary()
                item = notice.find(anchor)
                topic = next((t for t in notice.topics() if item in t.children), None)
                events.append(SlotSet(C.SLOT_LAST_ITEM, anchor))
                events.append(SlotSet(C.SLOT_LAST_TOPIC, topic.anchor if topic else None))
        return events


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


class ActionAnswerFromNotice(NoticeAction):
    """Answer a content question from the notice (with follow-ups against the last item)."""

    def name(self) -> str:
        return C.ACTION_ANSWER_FROM_NOTICE

    def answer(self, tracker: Tracker) -> Answer:
        context = {"last_item": tracker.get_slot(C.SLOT_LAST_ITEM), "last_topic": tracker.get_slot(C.SLOT_LAST_TOPIC)}
        return self.answerer.answer(_text(tracker), context)


class ActionOverview(NoticeAction):
    """List the topics the notice reports on."""

    def name(self) -> str:
        return C.ACTION_OVERVIEW

    def answer(self, tracker: Tracker) -> Answer:
        return self.answerer.overview(_text(tracker))


class ActionItemByNumber(NoticeAction):
    """Show one numbered item, from the ``item_number`` entity or the text itself."""

    def name(self) -> str:
        return C.ACTION_ITEM_BY_NUMBER

    def answer(self, tracker: Tracker) -> Answer:
        text = _text(tracker)
        raw = next(tracker.get_latest_entity_values(C.ENTITY_ITEM_NUMBER), None) or tracker.get_slot(C.SLOT_ITEM_NUMBER)
        number = parse_item_number(f"第{raw}条") if raw else parse_item_number(text)
        if number is None:
            return self.answerer.answer(text)
        return self.answerer.item_answer(number, text)


class ActionContact(NoticeAction):
    """How to give comments: the notice's closing paragraph."""

    def name(self) -> str:
        return C.ACTION_CONTACT

    def answer(self, tracker: Tracker) -> Answer:
        return self.answerer.contact_answer(_text(tracker))
