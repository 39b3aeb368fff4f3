"""The embedded dialogue: the Rasa project run in-process, with no Rasa server.

Intents come from ``bot/data/nlu.yml`` (:mod:`bot.nlu`), the action that follows an intent from
``bot/data/rules.yml``, replies from ``domain.yml``, and the custom actions are the very rasa-sdk
``Action`` classes the action server serves, run with a ``Tracker`` and a ``CollectingDispatcher``.

One path decides a turn: the intent picks the action; a notice action hands the turn and its
context (the tracker's slots) to the answerer once, which reads it as a follow-up or on its own
and decides whether the notice answers it. The dialogue does not second-guess the answer.

Each sender's tracker lives in a :mod:`bot.trackers` store (in memory, SQL or Redis, as
``endpoints.yml`` says), so every worker sees the same conversation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import constants as C
from bot.actions import (
    ActionAnswerFromNotice,
    ActionComplaint,
    ActionContact,
    ActionHumanHandoff,
    ActionItemByNumber,
    ActionOverview,
)
from bot.actions.notice import context_of
from bot.answer import MAX_QUESTION_CHARS, Answerer
from bot.nlu import BOT_DIR, IntentClassifier, classifier_for
from bot.privacy import mask
from bot.replies import DOMAIN_FILE, load_domain, render
from bot.trackers import FailSafeSessions, InMemoryTrackerStore, Session, TrackerStore, trim_metadata
from index.text import condense, normalize

RULES_FILE = BOT_DIR / "data" / "rules.yml"
# Intents whose action may search the notice: a repeat of the same question is not asked again.
_NOTICE_INTENTS = {C.INTENT_ASK_NOTICE, C.INTENT_ASK_FOLLOW_UP, C.INTENT_OUT_OF_SCOPE, C.INTENT_NLU_FALLBACK}
# Replies that need no notice; a guess of one below this confidence gives way to a follow-up the
# conversation explains (都是哪些人 after 31名干部 is not asking who the bot is).
_SHORT_REPLIES = {*C.SMALL_TALK_INTENTS, C.INTENT_HELP, C.INTENT_NOT_UNDERSTOOD, C.INTENT_COMPLAIN,
                  C.INTENT_REQUEST_HUMAN}
SURE_SMALL_TALK = 0.9


def load_rule_map(path: Path = RULES_FILE) -> dict[str, str]:
    """intent → the action that follows it, from the rules' ``intent`` then ``action`` steps."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    mapping: dict[str, str] = {}
    for rule in data.get("rules", []):
        steps = [s for s in rule.get("steps", []) if "intent" in s or "action" in s]
        for first, second in zip(steps, steps[1:]):
            if "intent" in first and "action" in second:
                mapping.setdefault(first["intent"], second["action"])
    return mapping


class Dialogue:
    """Rasa REST-channel conversations, handled in-process.

    :param answerer: the shared :class:`Answerer` (injected into the actions).
    :param classifier: intent recognition; default: k-NN over ``bot/data/nlu.yml``.
    :param store: where trackers live; default in memory with ``ttl_seconds`` and ``max_senders``.
    :param ttl_seconds: how long a sender's state is kept after their last message (default store).
    :param max_senders: most senders kept at once (default store).
    """

    def __init__(self, answerer: Answerer, classifier: IntentClassifier | None = None,
                 store: TrackerStore | None = None, ttl_seconds: float = 1800, max_senders: int = 10000,
                 domain_file: Path | None = None, rules_file: Path | None = None) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        if max_senders < 1:
            raise ValueError(f"max_senders must be >= 1, got {max_senders}")
        self.answerer = answerer
        self.classifier = classifier or classifier_for(answerer.retriever)
        self.store = store or InMemoryTrackerStore(ttl_seconds, max_senders)
        self.sessions = FailSafeSessions(self.store)
        self.domain = load_domain(domain_file or DOMAIN_FILE)
        self.rules = load_rule_map(rules_file or RULES_FILE)
        self.actions = {
            a.name(): a for a in (ActionAnswerFromNotice(answerer), ActionOverview(answerer),
                                  ActionItemByNumber(answerer), ActionContact(answerer),
                                  ActionComplaint(answerer), ActionHumanHandoff(answerer))
        }

    def warm_up(self) -> None:
        self.answerer.warm_up()
        self.classifier.warm_up()

    # ---- sessions ---------------------------------------------------------------------------

    def _session(self, sender: str) -> Session:
        return self.sessions.retrieve(sender)

    def reset(self, sender: str) -> None:
        """Forget a sender's conversation (the widget's "new conversation")."""
        self.sessions.delete(sender)

    @property
    def sender_count(self) -> int:
        return self.sessions.count()

    # ---- one turn ---------------------------------------------------------------------------

    def handle(self, sender: str, text: str, metadata: dict | None = None, debug: bool = False) -> list[dict]:
        """One user message in, the bot's messages out (Rasa REST channel format).

        :param debug: add ``custom["debug"]``: the intent, the action, how the turn was read (a
            follow-up, and of what), the question searched and the scope decision that applied.
        """
        # What the bot reads of it (a long message: its asking sentences), everywhere below; masked
        # first, so no personal number or name reaches a store, a log or the debug output.
        text = self.masked(condense((text or "").strip()[:MAX_QUESTION_CHARS]))
        session = self._session(sender)
        parse = self.parse(text, session)
        intent = parse["intent"]["name"]
        action = self.rules.get(intent, C.ACTION_ANSWER_FROM_NOTICE)
        kept = trim_metadata(metadata)
        message = dict(parse, metadata=dict(kept, debug=True) if debug else kept)
        if action in self.actions:
            messages, events = self._run_action(action, session, message)
        else:
            messages, events = self._utter(action, session, kept.get("doc")), []
        for event in events:
            if event.get("event") == "slot" and event.get("name") in session.slots:
                session.slots[event["name"]] = event["value"]
        user = {"event": "user", "text": text, "metadata": kept,
                "parse_data": {"intent": parse["intent"], "entities": parse.get("entities", [])}}
        session.add_events([user, {"event": "action", "name": action}, *events])
        self.sessions.save(session)
        out = []
        for m in messages:
            custom = dict(m.get("custom") or {})
            custom.setdefault("intent", intent)
            turn_debug = custom.pop("debug", None)
            if debug:
                custom["debug"] = self._debug(parse, action, turn_debug)
            out.append({"recipient_id": sender, "text": m.get("text", ""), "custom": custom})
        return out

    def parse(self, text: str, session: Session | None = None) -> dict:
        """Intent and entities for a message (already masked, as :meth:`handle` passes it); the
        same question twice in a row asks to be put another way (the answer did not help)."""
        parse = self.classifier.parse(text)
        intent = parse["intent"]
        if (session is not None and intent["name"] in _SHORT_REPLIES and intent["confidence"] < SURE_SMALL_TALK
                and self.answerer.reader.read(text, context_of(session.slots)).follow_up):
            parse = dict(parse, intent={"name": C.INTENT_ASK_FOLLOW_UP, "confidence": intent["confidence"]})
        if session is not None and parse["intent"]["name"] in _NOTICE_INTENTS:
            last = next((e.get("text") for e in reversed(session.events) if e.get("event") == "user"), None)
            if last and normalize(text) == normalize(last):
                parse = dict(parse, intent={"name": C.INTENT_NOT_UNDERSTOOD, "confidence": 1.0}, repeated=True)
        return parse

    def _published(self) -> tuple[str, ...]:
        """The notices' own phone numbers and e-mail addresses: published, not personal."""
        library = self.answerer.library
        return tuple(x for n in library.notices.values() for x in (n.contact.email, n.contact.phone) if x)

    def masked(self, text: str) -> str:
        """``text`` with personal data masked (:func:`bot.privacy.mask`), the notices' own kept."""
        return mask(text, self._published())

    def _debug(self, parse: dict, action: str, turn: dict | None) -> dict:
        """What staff see of a turn (``shell --debug``, the JSON debug)."""
        out = {"intent": parse["intent"], "nearest": parse.get("nearest"), "action": action}
        if parse.get("repeated"):
            out["note"] = "与上一句相同：请对方换个说法"
        turn = turn or {}
        out["turn"] = turn.get("turn") or {"follow_up": False, "searched": None,
                                           "decided_by": "不检索通报：按意图直接回复"}
        for key in ("features", "hits"):
            if key in turn:
                out[key] = turn[key]
        return out

    def _run_action(self, name: str, session: Session, parse: dict) -> tuple[list[dict], list[dict]]:
        tracker = Tracker(
            sender_id=session.sender,
            slots=dict(session.slots),
            latest_message=parse,
            events=list(session.events),
            paused=False,
            followup_action=None,
            active_loop={},
            latest_action_name=None,
        )
        dispatcher = CollectingDispatcher()
        events = asyncio.run(self.actions[name].run(dispatcher, tracker, self.domain))
        messages = []
        for m in dispatcher.messages:
            text = m.get("text") or ""
            if not text and m.get("response"):
                text = self._render(m["response"], m)
            messages.append({"text": text, "custom": m.get("custom") or {}})
        return messages, events

    def _render(self, response: str, fields: dict) -> str:
        return render(self.domain, response, fields)

    def _utter(self, response: str, session: Session, page: str | None = None) -> list[dict]:
        anchor, doc = session.slots.get(C.SLOT_LAST_ANCHOR), session.slots.get(C.SLOT_LAST_DOC) or page
        suggestions = ((self.answerer.related_suggestions(anchor, doc) if anchor else [])
                       or self.answerer.default_suggestions(doc))
        custom = {"citations": [], "abstained": False, "suggestions": suggestions, "kind": "chat"}
        # Rasa fills the help's examples from the slots the notice actions set; before any, from the
        # notice of the page or the only one.
        fields = self.answerer.examples(doc)
        fields.update({k: session.slots[k] for k in (C.SLOT_EXAMPLE_QUESTION, C.SLOT_EXAMPLE_ITEM) if session.slots.get(k)})
        return [{"text": self._render(response, fields), "custom": custom}]
