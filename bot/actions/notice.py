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
from bot.turns import Context

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


def citations_payload(answer: Answer, debug: bool = False) -> dict:
    """The ``custom`` payload: citations (JSON contract), abstention, suggestions."""
    citations = []
    for c in answer.citations[:3]:
        data = c.to_dict()
        # Where the quoted sentences stand in the notice text, so a page can highlight them.
        data["spans"] = [list(s) for s in c.quote_spans]
        citations.append(data)
    payload = {
        "citations": citations,
        "abstained": answer.abstained,
        "suggestions": answer.suggestions,
        "kind": answer.kind,
    }
    if debug:
        payload["debug"] = answer.debug
    return payload


def context_from(tracker: Tracker) -> Context:
    """The follow-up context the tracker's slots hold."""
    return context_of(tracker.slots)


def context_of(slots: dict) -> Context:
    """The follow-up context a tracker's slots hold."""
    quoted = []
    for span in slots.get(C.SLOT_LAST_QUOTED) or []:
        try:
            start, end = (int(x) for x in str(span).split("-", 1))
        except ValueError:
            continue
        quoted.append((start, end))
    return Context(question=slots.get(C.SLOT_LAST_QUESTION), doc=slots.get(C.SLOT_LAST_DOC),
                   anchor=slots.get(C.SLOT_LAST_ANCHOR) or slots.get(C.SLOT_LAST_ITEM), quoted=quoted)


def _wants_debug(tracker: Tracker) -> bool:
    return bool(((tracker.latest_message or {}).get("metadata") or {}).get("debug"))


class AnswererAction(Action, abc.ABC):
    """An action with the answerer injected, never built inside the action.

    :param answerer: the :class:`Answerer` to use; ``None`` means the process-wide default
        (what the rasa-sdk action server gets).
    """

    def __init__(self, answerer: Answerer | None = None) -> None:
        self._answerer = answerer

    @property
    def answerer(self) -> Answerer:
        return self._answerer or _default_answerer()

    @abc.abstractmethod
    def name(self) -> str:
        """The action's name (abstract here: the action server registers only concrete actions)."""


class NoticeAction(AnswererAction, abc.ABC):
    """Base of the notice actions: answer from the notices and set the follow-up slots."""

    @abc.abstractmethod
    def answer(self, tracker: Tracker) -> Answer:
        """Compute the answer for the tracker's latest message."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        answer = self.answer(tracker)
        payload = citations_payload(answer, _wants_debug(tracker))
        if answer.kind == "abstain":
            # Rasa fills utter_out_of_scope with the notice's title and contact; the text is the same.
            chosen = self.answerer.notice_for(answer.doc)
            title = chosen[1].full_title if chosen else ""
            dispatcher.utter_message(response=C.UTTER_OUT_OF_SCOPE, json_message=payload, text=answer.text,
                                     title=title, contact=self.answerer.contact_line(answer.doc))
        else:
            dispatcher.utter_message(text=answer.text, json_message=payload)
        return self.slot_events(tracker, answer)

    def slot_events(self, tracker: Tracker, answer: Answer) -> list[dict]:
        """What the turn leaves for the next: its outcome (``cited``/``declined``) and, when it
        answered from a passage, that passage as the context of a follow-up."""
        answered = bool(answer.citations) and not answer.abstained
        first = answer.citations[0] if answered else None
        # The last question answered from a notice, beside the passage that answered it: a
        # follow-up (那连南呢) keeps the question it follows (那佛冈呢 next still asks what 建了多少座
        # asked), and a turn answered from no passage (declined) leaves both as they were.
        follow_up = (answer.debug.get("turn") or {}).get("follow_up") and tracker.get_slot(C.SLOT_LAST_QUESTION)
        keeps = follow_up or (first is None and not answer.about)
        question = tracker.get_slot(C.SLOT_LAST_QUESTION) if keeps else (answer.question or None)
        events = [SlotSet(C.SLOT_LAST_QUESTION, question),
                  SlotSet(C.SLOT_CITED, first.anchor if first else None),
                  SlotSet(C.SLOT_DECLINED, bool(answer.abstained))]
        doc = first.doc if first else answer.doc
        if doc and doc != tracker.get_slot(C.SLOT_LAST_DOC) and len(self.answerer.library.notices) > 1:
            # The help and default replies suggest what this notice answers.
            examples = self.answerer.examples(doc)
            events += [SlotSet(C.SLOT_EXAMPLE_QUESTION, examples["example_question"]),
                       SlotSet(C.SLOT_EXAMPLE_ITEM, examples["example_item"])]
        if first is None:
            if answer.about:  # not covered: the conversation is still about that passage
                events += [SlotSet(C.SLOT_LAST_DOC, answer.about[0]), SlotSet(C.SLOT_LAST_ANCHOR, answer.about[1])]
            elif (answer.doc and answer.doc != tracker.get_slot(C.SLOT_LAST_DOC)
                  and len(self.answerer.library.notices) > 1):
                # The overview or a decline of another notice: the conversation is now about it.
                events += [SlotSet(C.SLOT_LAST_DOC, answer.doc), SlotSet(C.SLOT_LAST_ANCHOR, None)]
            return events
        events += [SlotSet(C.SLOT_LAST_ANCHOR, first.anchor), SlotSet(C.SLOT_LAST_DOC, first.doc)]
        # 还有呢 continues from what was shown: the spans quoted from this passage so far.
        earlier = tracker.get_slot(C.SLOT_LAST_QUOTED) or [] if first.anchor == tracker.get_slot(C.SLOT_LAST_ANCHOR) else []
        spans = list(dict.fromkeys([*earlier, *(f"{s}-{e}" for s, e in first.quote_spans)]))[-C.MAX_QUOTED_SPANS:]
        events.append(SlotSet(C.SLOT_LAST_QUOTED, spans))
        if first.anchor.startswith("item-"):
            notice = self.answerer.library.notices[first.doc]
            item = notice.find(first.anchor)
            topic = next((t for t in notice.topics() if item in t.children), None)
            events.append(SlotSet(C.SLOT_LAST_ITEM, first.anchor))
            events.append(SlotSet(C.SLOT_LAST_TOPIC, topic.anchor if topic else None))
        return events


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def page_of(tracker: Tracker) -> str | None:
    """The notice of the page the widget is on (``metadata.doc``, Rasa's REST channel metadata)."""
    return ((tracker.latest_message or {}).get("metadata") or {}).get("doc") or None


class ActionAnswerFromNotice(NoticeAction):
    """Answer a question from the notice, reading a follow-up against the last passage; decline
    (with the notice's contact) what the notice does not answer."""

    def name(self) -> str:
        return C.ACTION_ANSWER_FROM_NOTICE

    def answer(self, tracker: Tracker) -> Answer:
        return self.answerer.answer(_text(tracker), context_from(tracker), page_of(tracker))


class ActionOverview(NoticeAction):
    """List the topics the notice reports on (a question naming a subject is answered instead)."""

    def name(self) -> str:
        return C.ACTION_OVERVIEW

    def answer(self, tracker: Tracker) -> Answer:
        return self.answerer.overview_or_answer(_text(tracker), context_from(tracker), page_of(tracker))


class ActionItemByNumber(NoticeAction):
    """Show one numbered item, from the ``item_number`` entity or the text itself."""

    def name(self) -> str:
        return C.ACTION_ITEM_BY_NUMBER

    def answer(self, tracker: Tracker) -> Answer:
        text = _text(tracker)
        raw = next(tracker.get_latest_entity_values(C.ENTITY_ITEM_NUMBER), None) or tracker.get_slot(C.SLOT_ITEM_NUMBER)
        number = parse_item_number(f"第{raw}条") if raw else parse_item_number(text)
        context = context_from(tracker)
        if number is None:
            return self.answerer.answer(text, context, page_of(tracker))
        return self.answerer.item_answer(number, text, self.answerer.resolve_doc(text, context, page_of(tracker)))


class ActionContact(NoticeAction):
    """How to give comments: the notice's closing paragraph (another office's phone, or a rule
    about e-mail, is answered from the passage that speaks of it instead)."""

    def name(self) -> str:
        return C.ACTION_CONTACT

    def answer(self, tracker: Tracker) -> Answer:
        return self.answerer.contact_or_answer(_text(tracker), context_from(tracker), page_of(tracker))


class ChannelsAction(AnswererAction, abc.ABC):
    """Utter a ``domain.yml`` response filled with the notice's own supervision channels (phone,
    postal address, e-mail, as the notice states them). Nothing is quoted as an answer."""

    response: str = ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        doc = self.answerer.resolve_doc(_text(tracker), context_from(tracker), page_of(tracker))
        fields = self.answerer.channels(doc)
        custom = {"citations": [], "abstained": False, "kind": "channels",
                  "suggestions": self.answerer.default_suggestions(doc)}
        dispatcher.utter_message(response=self.response, json_message=custom, **fields)
        return [SlotSet(C.SLOT_CITED, None), SlotSet(C.SLOT_DECLINED, False)]


class ActionComplaint(ChannelsAction):
    """Criticism or a complaint: acknowledge it and give the notice's supervision channels."""

    response = C.UTTER_COMPLAINT

    def name(self) -> str:
        return C.ACTION_COMPLAINT


class ActionHumanHandoff(ChannelsAction):
    """A request for a person: say honestly that this is an automatic assistant, give the channels."""

    response = C.UTTER_HUMAN_HANDOFF

    def name(self) -> str:
        return C.ACTION_HUMAN_HANDOFF
