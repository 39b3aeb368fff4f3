"""The embedded dialogue: the Rasa project run in-process, with no Rasa server.

Intents come from ``bot/data/nlu.yml`` (:mod:`bot.nlu`), which action follows an intent from
``bot/data/rules.yml`` (except that an ``out_of_scope`` intent is checked by the answerer's scope
model before the bot declines), canned replies from ``domain.yml``, and the custom actions are the very
rasa-sdk ``Action`` classes the action server serves, run with a ``Tracker`` and a
``CollectingDispatcher``. Each sender has its own slots, kept for ``ttl_seconds`` after their
last message; at most ``max_senders`` are kept (the least recently seen go first).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import constants as C
from bot.actions import (
    ActionAnswerFromNotice,
    ActionContact,
    ActionItemByNumber,
    ActionOverview,
    NoticeAction,
)
from bot.answer import MAX_QUESTION_CHARS, Answerer
from bot.nlu import BOT_DIR, IntentClassifier
from bot.scope import foreign_names, main_clause
from index.text import has_chinese, normalize

DOMAIN_FILE = BOT_DIR / "domain.yml"
RULES_FILE = BOT_DIR / "data" / "rules.yml"

# Small talk the intent model is unsure of goes to the search ("回头核查" is not "回头见").
_SMALL_TALK = {C.INTENT_GREET, C.INTENT_GOODBYE, C.INTENT_THANK}
SMALL_TALK_CONFIDENCE = 0.8
# A fused search score (1 = first for every passage ranker; a close labelled question adds up to
# its weight on top) at which the search's choice is firm.
FIRM_SEARCH_SCORE = 0.8
# Asks for a fact or a yes/no, which the list of topics does not answer (the NLU overview examples
# ask how many items or parts, never who, when or whether).
_SPECIFIC_ASK_RE = re.compile(r"谁|什么时候|何时|哪天|哪年|是不是|会不会|为啥|为什么|有没有")
# Yes/no: 还能用私人邮箱吗 asks whether, not for an address.
_YES_NO_RE = re.compile(r"吗[？?。！!]*$|能不能|可不可以|是不是|有没有|行不行")
# Short follow-ups ("连南那边呢？", "那经费怎么用的？") are answered against the last item even
# when the intent model, seeing no subject, calls them out of scope.
_FOLLOW_UP_RE = re.compile(r"(呢[？?！!。]*$|那边|那里|^那|^还有|^另外|这方面|这一块)")
# Unmistakable requests for the contact paragraph; anything vaguer ("私人邮箱") is left to the intents.
_CONTACT_RE = re.compile(r"(联系电话|联系方式|电话(?:是|号码)?多少|(?:电子)?邮箱(?:是|地址)|邮编|邮政编码|通信地址|邮寄地址|"
                         r"怎么反映|如何反映|向谁反映|公开期限|公示期)")


@dataclass
class Session:
    """One sender's conversation state, as a Rasa tracker would hold it."""

    sender: str
    slots: dict = field(default_factory=lambda: {s: None for s in C.SLOTS})
    events: list = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)


def load_domain(path: Path = DOMAIN_FILE) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


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
    :param ttl_seconds: how long a sender's state is kept after their last message.
    :param max_senders: most senders kept at once.
    """

    def __init__(self, answerer: Answerer, classifier: IntentClassifier | None = None,
                 ttl_seconds: float = 1800, max_senders: int = 10000,
                 domain_file: Path | None = None, rules_file: Path | None = None) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        if max_senders < 1:
            raise ValueError(f"max_senders must be >= 1, got {max_senders}")
        self.answerer = answerer
        self.classifier = classifier or IntentClassifier(answerer.retriever.embedder)
        self._contact_words: str | None = None
        self.ttl = ttl_seconds
        self.max_senders = max_senders
        self.domain = load_domain(domain_file or DOMAIN_FILE)
        self.rules = load_rule_map(rules_file or RULES_FILE)
        self.actions: dict[str, NoticeAction] = {
            a.name(): a for a in (ActionAnswerFromNotice(answerer), ActionOverview(answerer),
                                  ActionItemByNumber(answerer), ActionContact(answerer))
        }
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self.answerer.warm_up()
        self.classifier.warm_up()

    # ---- sessions ---------------------------------------------------------------------------

    def _session(self, sender: str) -> Session:
        now = time.monotonic()
        with self._lock:
            while self._sessions:
                oldest = next(iter(self._sessions.values()))
                if now - oldest.last_seen <= self.ttl and len(self._sessions) < self.max_senders:
                    break
                self._sessions.popitem(last=False)
            session = self._sessions.pop(sender, None)
            if session is None or now - session.last_seen > self.ttl:
                session = Session(sender)
            session.last_seen = now
            self._sessions[sender] = session
            return session

    def reset(self, sender: str) -> None:
        """Forget a sender's conversation (the widget's "new conversation")."""
        with self._lock:
            self._sessions.pop(sender, None)

    @property
    def sender_count(self) -> int:
        return len(self._sessions)

    # ---- one turn ---------------------------------------------------------------------------

    def handle(self, sender: str, text: str, metadata: dict | None = None) -> list[dict]:
        """One user message in, the bot's messages out (Rasa REST channel format)."""
        text = (text or "").strip()[:MAX_QUESTION_CHARS]
        session = self._session(sender)
        parse = self.parse(text, session)
        intent = parse["intent"]["name"]
        action = self.rules.get(intent, C.ACTION_ANSWER_FROM_NOTICE)
        if intent == C.INTENT_OUT_OF_SCOPE:
            # The nearest NLU examples are one signal ("清远的特色镇有哪些" sits near "清远有什么
            # 特产"); the answerer's scope model weighs it with nine others before it abstains.
            action = C.ACTION_ANSWER_FROM_NOTICE
        session.events.append({"event": "user", "text": text, "parse_data": parse, "metadata": metadata or {}})
        if action in self.actions:
            messages, events = self._run_action(action, session, parse)
        else:
            messages, events = self._utter(action), []
        for event in events:
            if event.get("event") == "slot":
                session.slots[event["name"]] = event["value"]
        session.events.append({"event": "action", "name": action})
        session.events.extend(events)
        out = []
        for message in messages:
            custom = dict(message.get("custom") or {})
            custom.setdefault("intent", intent)
            out.append({"recipient_id": sender, "text": message.get("text", ""), "custom": custom})
        return out

    def parse(self, text: str, session: Session | None = None) -> dict:
        """Intent and entities for a message, with the dialogue's own overrides."""
        if not text:
            return {"text": text, "intent": {"name": C.INTENT_HELP, "confidence": 1.0}, "entities": []}
        if not has_chinese(text) and not self.classifier.knows(text):
            # Emoji, punctuation, digits, stray Latin: nearest examples would be a guess ("😀" came
            # out as thank). The notice search declines such input plainly, with the contact.
            return {"text": text, "intent": {"name": C.INTENT_NLU_FALLBACK, "confidence": 0.0}, "entities": []}
        parse = self.classifier.parse(text)
        intent, confidence = parse["intent"]["name"], parse["intent"]["confidence"]
        norm = normalize(text)
        contact_words = bool(intent != C.INTENT_ASK_ITEM_BY_NUMBER and _CONTACT_RE.search(norm))
        if self._search_instead(text, norm, intent, confidence, contact_words):
            parse["intent"] = {"name": C.INTENT_ASK_NOTICE, "confidence": confidence}
        elif contact_words:
            parse["intent"] = {"name": C.INTENT_ASK_CONTACT, "confidence": 1.0}
        elif (
            session is not None
            and session.slots.get(C.SLOT_LAST_ITEM)
            and intent in (C.INTENT_OUT_OF_SCOPE, C.INTENT_NLU_FALLBACK, C.INTENT_ASK_NOTICE)
            and len(norm) <= 14
            and _FOLLOW_UP_RE.search(norm)
        ):
            parse["intent"] = {"name": C.INTENT_ASK_NOTICE, "confidence": confidence}
            parse["follow_up"] = True
        return parse

    def _search_instead(self, text: str, norm: str, intent: str, confidence: float, contact_words: bool) -> bool:
        """Whether an intent whose reply is not a search should give way to the notice search
        (``norm``: ``text`` normalised)."""
        retriever = self.answerer.retriever
        retriever.warm_up()
        if ((contact_words or intent in (C.INTENT_ASK_CONTACT, C.INTENT_ASK_OVERVIEW))
                and foreign_names(text, retriever.vocabulary_text, retriever.synonyms, retriever.issuers)):
            # "清远市公安局的联系电话是多少" is not asking for this bureau's phone: the notice search
            # (and its scope model) decides, as for any question about another office.
            return True
        if contact_words or intent == C.INTENT_ASK_CONTACT:
            # "非遗展馆的预约电话是多少" asks for a phone, but not for ours; "上班还能用私人邮箱发
            # 文件吗" speaks of e-mail, but asks about a rule another passage states.
            return self._names_another_subject(text) or (
                _YES_NO_RE.search(text) is not None and self._search_prefers_another(text))
        if intent in _SMALL_TALK and confidence < SMALL_TALK_CONFIDENCE:
            # "官网上以前发的老内容有没有人回头核查" is not a goodbye for its 回头: unsure small talk
            # goes to the search, which answers or declines.
            return True
        # "固定资产管理方面采取了哪些整改措施" reads like "整改了哪些方面" to the intent model, but
        # it names a subject a few passages are about: search those, not list all topics.
        # "是谁来查的他们" / "改完是不是就不管了" ask who, when or whether: no list of topics answers.
        return intent == C.INTENT_ASK_OVERVIEW and (
            self.answerer.names_a_subject(text) or _SPECIFIC_ASK_RE.search(main_clause(norm)) is not None)

    def _search_prefers_another(self, text: str) -> bool:
        """Whether the notice search firmly puts another passage than the contact paragraph first
        (its rankers all but agree: 私人邮箱 is 第21条's rule; 能发邮件给你们吗 finds nothing firm)."""
        hits = self.answerer.retriever.search(text, top_k=1)
        return bool(hits) and hits[0].chunk.anchor != "contact" and hits[0].score >= FIRM_SEARCH_SCORE

    def _names_another_subject(self, text: str) -> bool:
        """Whether ``text`` names a subject of another passage than the contact paragraph."""
        retriever = self.answerer.retriever
        if self._contact_words is None:
            notice, _ = self.answerer.primary()
            contact = next((c for c in retriever.chunks if c.anchor == "contact" and c.doc == notice.doc), None)
            self._contact_words = retriever.passage_words(contact) if contact else ""
        return any(w not in self._contact_words for w in retriever.specific_words(text))

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
        messages = [{"text": m.get("text") or "", "custom": m.get("custom") or {}} for m in dispatcher.messages]
        return messages, events

    def _utter(self, response: str) -> list[dict]:
        variants = (self.domain.get("responses") or {}).get(response) or [{"text": ""}]
        text = variants[0].get("text", "")
        # out_of_scope never reaches here: the answerer's scope model declines (see handle()).
        custom = {"citations": [], "abstained": False, "suggestions": self.answerer.default_suggestions(),
                  "kind": "chat"}
        return [{"text": text, "custom": custom}]
