"""Conversation tests in Rasa's test-story format, run through the embedded dialogue.

A story (``bot/tests/*.yml``, as ``rasa test`` reads them) is a list of steps: a ``user`` turn
with its ``intent``, the ``action`` the bot should run, and the ``slot_was_set`` outcome of a
notice question (``cited: item-16``, or ``declined: true``). Each story runs as a new
conversation; a turn is right when the action that ran and the slots it set are the expected
ones (a split item's pieces count for the item; the four notice actions, which all answer through
the answerer, count as one where the story gives the outcome). The intent the model heard is
reported but does not decide a turn: what a citizen gets does.

The figures: turns right, stories right, off-topic turns declined (``out_of_scope`` turns that
quote nothing from a notice) and follow-ups resolved (``ask_follow_up`` turns that are right).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot import constants as C
from bot.nlu import strip_annotations
from knowledge.questions import anchor_matches

TESTS_DIR = Path(__file__).resolve().parent / "tests"
NOTICE_ACTIONS = (C.ACTION_ANSWER_FROM_NOTICE, C.ACTION_CONTACT, C.ACTION_OVERVIEW, C.ACTION_ITEM_BY_NUMBER)
TUNING_STORIES = TESTS_DIR / "test_stories.yml"
HELDOUT_STORIES = TESTS_DIR / "heldout_stories.yml"


@dataclass
class Turn:
    """One user turn of a story and what should follow it."""

    text: str
    intent: str
    actions: list[str] = field(default_factory=list)
    slots: dict = field(default_factory=dict)


@dataclass
class Story:
    name: str
    turns: list[Turn]


@dataclass
class TurnResult:
    turn: Turn
    intent: str
    action: str
    slots: dict
    cited_anything: bool
    reply: str

    @property
    def right(self) -> bool:
        expected = self.turn.actions[0] if self.turn.actions else None
        # The notice actions all answer through the answerer, which may find that a contact-
        # looking question asks about another passage: with an outcome to check, that decides.
        same_family = self.turn.slots and {expected, self.action} <= set(NOTICE_ACTIONS)
        if expected and self.action != expected and not same_family:
            return False
        for name, expected in self.turn.slots.items():
            got = self.slots.get(name)
            if name == C.SLOT_CITED and isinstance(expected, str):
                if not got or not anchor_matches(got, [expected]):
                    return False
            elif got != expected and not (expected is False and name not in self.slots):
                return False
        return True


@dataclass
class Report:
    """What ``rasa test`` prints, for our outcomes."""

    stories: list[tuple[Story, list[TurnResult]]] = field(default_factory=list)

    def _turns(self, intent: str | None = None, after_topic: bool = False) -> list[TurnResult]:
        out = []
        for _, results in self.stories:
            for i, r in enumerate(results):
                if intent is None or r.turn.intent == intent:
                    if not after_topic or any(p.turn.intent in (C.INTENT_ASK_NOTICE, C.INTENT_ASK_FOLLOW_UP)
                                              for p in results[:i]):
                        out.append(r)
        return out

    @staticmethod
    def _share(hits: int, total: int) -> float:
        return round(hits / total, 4) if total else 0.0

    def to_dict(self) -> dict:
        turns = self._turns()
        off = self._turns(C.INTENT_OUT_OF_SCOPE)
        off_after = self._turns(C.INTENT_OUT_OF_SCOPE, after_topic=True)
        follow = self._turns(C.INTENT_ASK_FOLLOW_UP)
        right_stories = sum(all(r.right for r in results) for _, results in self.stories)
        by_intent: dict[str, list[int]] = {}
        for r in turns:
            counts = by_intent.setdefault(r.turn.intent, [0, 0])
            counts[0] += r.right
            counts[1] += 1
        return {
            "stories": len(self.stories),
            "turns": len(turns),
            "turns_right": self._share(sum(r.right for r in turns), len(turns)),
            "stories_right": self._share(right_stories, len(self.stories)),
            "off_topic_turns": len(off),
            "off_topic_declined": self._share(sum(not r.cited_anything for r in off), len(off)),
            "off_topic_after_topic_declined": self._share(sum(not r.cited_anything for r in off_after), len(off_after)),
            "follow_ups": len(follow),
            "follow_ups_resolved": self._share(sum(r.right for r in follow), len(follow)),
            "intent_accuracy": self._share(sum(r.intent == r.turn.intent for r in turns), len(turns)),
            "turns_right_by_intent": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_intent.items())},
        }

    def failed(self) -> list[tuple[Story, list[TurnResult]]]:
        return [(s, results) for s, results in self.stories if not all(r.right for r in results)]


def load_stories(path: str | Path) -> list[Story]:
    """The stories of a Rasa 3.x test-story file.

    :raises ValueError: on a file that is not one (with the story's name).
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"无法读取测试故事 / cannot read stories from {path}: {exc}") from exc
    stories = []
    for raw in data.get("stories") or []:
        name = raw.get("story") or "?"
        turns: list[Turn] = []
        for step in raw.get("steps") or []:
            if "user" in step:
                # Rasa's entity markup (第[16](item_number)条) is not what the user typed.
                turns.append(Turn(strip_annotations(str(step["user"]).strip())[0], str(step.get("intent") or "")))
            elif not turns:
                raise ValueError(f"{path}: story {name!r} has a step before its first user turn")
            elif "action" in step:
                turns[-1].actions.append(step["action"])
            elif "slot_was_set" in step:
                for item in step["slot_was_set"] or []:
                    if isinstance(item, dict):
                        turns[-1].slots.update(item)
        if not turns:
            raise ValueError(f"{path}: story {name!r} has no user turn")
        stories.append(Story(name, turns))
    return stories


def run_stories(dialogue, stories: list[Story]) -> Report:
    """Run each story as a new conversation of ``dialogue`` (the embedded one)."""
    report = Report()
    for story in stories:
        sender = f"story-{uuid.uuid4().hex[:12]}"
        results = []
        for turn in story.turns:
            messages = dialogue.handle(sender, turn.text, debug=True)
            custom = messages[0]["custom"] if messages else {}
            debug = custom.get("debug") or {}
            session = dialogue.store.retrieve(sender)
            set_now = _slots_set_in_last_turn(session.events)
            results.append(TurnResult(turn, (debug.get("intent") or {}).get("name", ""), debug.get("action", ""),
                                      set_now, bool(custom.get("citations")) and not custom.get("abstained"),
                                      messages[0]["text"] if messages else ""))
        dialogue.reset(sender)
        report.stories.append((story, results))
    return report


def _slots_set_in_last_turn(events: list[dict]) -> dict:
    out: dict = {}
    for event in reversed(events):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot":
            out.setdefault(event["name"], event["value"])
    return out


def format_failed(report: Report) -> str:
    """The failed stories in Rasa's test-story format, each wrong step marked ``# predicted:``."""
    lines = []
    for story, results in report.failed():
        lines.append(f"- story: {story.name}")
        lines.append("  steps:")
        for r in results:
            mark = "" if r.intent == r.turn.intent else f"  # heard: {r.intent}"
            lines.append(f"  - user: {r.turn.text}")
            lines.append(f"    intent: {r.turn.intent}{mark}")
            for action in r.turn.actions[:1]:
                wrong = "" if r.action == action else f"  # predicted: {r.action}"
                lines.append(f"  - action: {action}{wrong}")
            if r.turn.slots:
                got = ", ".join(f"{k}: {r.slots.get(k)}" for k in r.turn.slots)
                expected = ", ".join(f"{k}: {v}" for k, v in r.turn.slots.items())
                lines.append(f"  - slot_was_set: [{expected}]" + ("" if r.right else f"  # got: {got}"))
            if not r.right:
                lines.append(f"    # reply: {r.reply[:90]}")
        lines.append("")
    return "\n".join(lines)
