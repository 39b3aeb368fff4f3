"""Score answers against a labelled question file: recall@k, abstention, and the misses.

The file is TSV with a header ``question	expected	kind``; ``expected`` is a chunk anchor
(``item-16``, ``part-1-p2``, ``contact``), several joined by ``|`` when each is right, or ``-`` when
the notice does not answer (the bot should abstain).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from knowledge.questions import Question, anchor_matches, load_questions

__all__ = ["Question", "Report", "answer_ranker", "evaluate", "load_questions"]


@dataclass
class Report:
    """Figures over one question file."""

    total: int = 0
    in_scope: int = 0
    out_of_scope: int = 0
    hit1: int = 0
    hit3: int = 0
    abstained_oos: int = 0
    abstained_in: int = 0
    by_kind: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # kind -> [hit1, n]
    misses: list = field(default_factory=list)

    @property
    def recall1(self) -> float:
        return self.hit1 / self.in_scope if self.in_scope else 0.0

    @property
    def recall3(self) -> float:
        return self.hit3 / self.in_scope if self.in_scope else 0.0

    @property
    def abstention(self) -> float:
        """Share of out-of-scope questions the bot declined."""
        return self.abstained_oos / self.out_of_scope if self.out_of_scope else 0.0

    @property
    def false_abstention(self) -> float:
        """Share of answerable questions the bot wrongly declined."""
        return self.abstained_in / self.in_scope if self.in_scope else 0.0

    def kind_recall(self, kind: str) -> float:
        hit, n = self.by_kind.get(kind, (0, 0))
        return hit / n if n else 0.0

    def to_dict(self) -> dict:
        return {
            "questions": self.total,
            "in_scope": self.in_scope,
            "out_of_scope": self.out_of_scope,
            "recall@1": round(self.recall1, 4),
            "recall@3": round(self.recall3, 4),
            "abstention": round(self.abstention, 4),
            "false_abstention": round(self.false_abstention, 4),
            "recall@1_by_kind": {k: round(self.kind_recall(k), 4) for k in sorted(self.by_kind)},
            "misses": self.misses,
        }


def evaluate(questions: list[Question], rank: Callable[[str], tuple[list[str], bool]]) -> Report:
    """Score a ranking function.

    :param questions: labelled questions.
    :param rank: question → (anchors best first, abstained?).
    """
    report = Report()
    for q in questions:
        anchors, abstained = rank(q.question)
        report.total += 1
        if q.out_of_scope:
            report.out_of_scope += 1
            report.abstained_oos += int(abstained)
            if not abstained:
                report.misses.append({"question": q.question, "expected": "-", "got": anchors[:1], "kind": q.kind})
            continue
        report.in_scope += 1
        report.abstained_in += int(abstained)
        first = (not abstained) and bool(anchors) and anchor_matches(anchors[0], q.expected)
        top3 = (not abstained) and any(anchor_matches(a, q.expected) for a in anchors[:3])
        report.hit1 += int(first)
        report.hit3 += int(top3)
        report.by_kind[q.kind][0] += int(first)
        report.by_kind[q.kind][1] += 1
        if not first:
            report.misses.append({
                "question": q.question, "expected": "|".join(q.expected), "kind": q.kind,
                "got": ["(abstained)"] if abstained else anchors[:3],
            })
    return report


def answer_ranker(answerer, doc: str | None = None, of: str | None = None) -> Callable[[str], tuple[list[str], bool]]:
    """The full answerer as a ranking function: cited anchors, or abstention.

    :param doc: ask as on that notice's page (``metadata.doc``).
    :param of: the notice the questions are about (default: ``doc``); a passage of another notice
        then counts as another anchor (``<doc>:<anchor>``), never as the one expected. When the
        bot asks which notice is meant, the choice of ``of`` is clicked, as the citizen would.
    """
    of = of or doc

    def rank(question: str) -> tuple[list[str], bool]:
        ans = answerer.answer(question, page=doc)
        if ans.kind == "choose_notice" and of in answerer.library.meta:
            # the buttons are the notices in the library's order
            ans = answerer.answer(ans.suggestions[list(answerer.library.meta).index(of)], page=doc)
        found = [(c.doc, c.anchor) for c in ans.citations]
        if ans.kind == "search":
            found = [(h.get("doc"), h["anchor"]) for h in ans.debug.get("hits", [])] or found
        anchors = [a if of is None or d in (None, of) else f"{d}:{a}" for d, a in found]
        return anchors, ans.abstained

    return rank
