"""What an answer is made of: the reply, the citations behind it, and how a passage is named.

Shared by the answerer (bot/answer.py) and the follow-up answers (bot/followups.py); the CLI's
JSON contract is ``Answer.to_dict()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.parser import Node


@dataclass
class Citation:
    """Where an answer's sentences come from (the CLI's JSON contract)."""

    doc: str
    number: str
    heading: str
    path: str
    anchor: str
    passage: str
    quote: str
    score: float
    title: str = ""
    quote_spans: list[tuple[int, int]] = field(default_factory=list)
    # The notice's short title, as a reply names it: 《关于八届市委第五轮巡察整改进展情况的通报》.
    notice: str = ""
    # The quoted sentences one by one, whole and in order, never "……"-joined: what the widget lists
    # under the reply's lead (``quote`` stays the one joined string). See :func:`quoted_sentences`.
    quotes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "doc": self.doc,
            "notice": self.notice,
            "number": self.number,
            "heading": self.heading,
            "path": self.path,
            "anchor": self.anchor,
            "passage": self.passage,
            "quote": self.quote,
            "quotes": self.quotes,
            "score": round(float(self.score), 4),
        }


@dataclass
class Answer:
    """One reply to one question."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    kind: str = "search"  # search | item | overview | contact | abstain | not_covered | empty
    debug: dict = field(default_factory=dict)
    # The passage the conversation is about when nothing is cited (not_covered: 第4条 does not
    # speak of 连南, and 那全市的呢 still asks about 第4条): (doc, anchor).
    about: tuple[str, str] | None = None
    # The notice the reply is about (its contact, its suggestions), when one is.
    doc: str | None = None

    def to_dict(self) -> dict:
        """The JSON contract: question, answer, abstained, citations (≤ 3, best first)."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations[:3]],
        }


def node_title(node: Node) -> str:
    """How a citation titles a passage: 第16条 大力推进应急广播系统建设."""
    return f"第{node.number}条 {node.heading}" if node.kind == "item" else node.heading


def node_label(node: Node) -> str:
    """How a reply names a passage: 第16条“大力推进应急广播系统建设”, or “前言”部分."""
    return f"第{node.number}条“{node.heading}”" if node.kind == "item" else f"“{node.heading}”部分"


def join_quotes(text: str, spans: list[tuple[int, int]]) -> str:
    out = []
    prev_end = None
    for s, e in spans:
        piece = text[s:e].strip()
        if prev_end is not None and s > prev_end and text[prev_end:s].strip():
            out.append("……")
        out.append(piece)
        prev_end = e
    return "".join(out)


def quoted_sentences(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The sentences of ``text`` (a notice) that ``spans`` quote, one by one, whole and in order."""
    return [sentence for s, e in spans for sentence in _sentences(text[s:e].strip())]


# A sentence ends at 。！？ (and a closing quotation mark or bracket right after); a ； does not end one.
_SENTENCE_RE = re.compile(r"[^。！？!?]+(?:[。！？!?]+[”’」』）)]*)?")


def _sentences(piece: str) -> list[str]:
    return [m.group().strip() for m in _SENTENCE_RE.finditer(piece) if m.group().strip()]


def cite_label(c: Citation, with_notice: bool = True) -> str:
    """How a reply names a citation: 《…通报》第16条“大力推进应急广播系统建设”."""
    notice = c.notice if with_notice else ""
    if c.number:
        return f"{notice}第{c.number}条“{c.heading}”"
    return f"{notice}“{c.heading}”部分"


def short_title(title: str) -> str:
    """《关于…的通报》: a notice as a reply names it."""
    return f"《{title}》"
