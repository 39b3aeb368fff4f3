"""Cut a parsed notice into retrievable chunks, at the level of a numbered item.

A chunk is what a citation points at: a numbered item (二、（四）第16条), the preamble, each point
of part 一, each next-step section, the contact paragraph. An item too long for the model is split
by its points, each piece keeping the item's number and heading so a citation still reads
"第16条 大力推进应急广播系统建设".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from index.text import split_sentences
from knowledge.parser import Node, Notice

# e5 reads 512 tokens; leave room for the prompt, the heading line and special tokens.
MAX_TOKENS = 480


@dataclass
class Chunk:
    """A retrievable passage and where it stands in its notice."""

    id: str
    doc: str
    anchor: str
    kind: str
    number: str
    heading: str
    path: str
    topic: str
    text: str
    start: int
    end: int
    # Sentence spans as absolute offsets into the notice text.
    sentences: list[tuple[int, int]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """How a citation names the chunk: ``第16条 大力推进应急广播系统建设``."""
        if self.kind == "item":
            return f"第{self.number}条 {self.heading}"
        return self.heading

    def embedding_text(self) -> str:
        """What the dense model reads: the topic and heading give the body its context."""
        head = " ".join(x for x in (self.topic, self.title) if x)
        return f"{head}\n{self.text}" if head else self.text

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sentences"] = [list(s) for s in self.sentences]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Chunk":
        data = dict(data)
        data["sentences"] = [tuple(s) for s in data.get("sentences", [])]
        return cls(**data)


def passage_anchor(kind: str, anchor: str) -> str:
    """The passage a chunk belongs to: a split item's pieces (item-4-p2, item-4-p2-s1) are the
    item; a long section's pieces (section-1-s2) the section."""
    if kind == "item":
        return re.sub(r"(?:-p\d+)?(?:-s\d+)?$", "", anchor)
    return re.sub(r"-s\d+$", "", anchor)


def _make(notice: Notice, node: Node, kind: str, heading: str, topic: str, start: int, end: int,
          anchor: str | None = None, number: str = "") -> Chunk:
    text = notice.text[start:end]
    return Chunk(
        id=f"{notice.doc}#{anchor or node.anchor}",
        doc=notice.doc,
        anchor=anchor or node.anchor,
        kind=kind,
        number=number or node.number,
        heading=heading,
        path=node.path,
        topic=topic,
        text=text,
        start=start,
        end=end,
        sentences=split_sentences(text, start),
    )


def _body_start(notice: Notice, node: Node) -> int:
    start = node.body_start if node.body_start >= node.start else node.start
    while start < node.end and notice.text[start] in " \t\r\n\u3000":
        start += 1
    return start


def chunk_notice(notice: Notice, count_tokens: Callable[[str], int] | None = None,
                 max_tokens: int = MAX_TOKENS) -> list[Chunk]:
    """Chunks of a notice in document order.

    :param notice: the parsed notice.
    :param count_tokens: the embedding model's token counter; when given, an item longer than
        ``max_tokens`` is split by its points.
    :param max_tokens: the longest chunk the model should read whole.
    :returns: the chunks; every chunk's text is a slice of ``notice.text``.
    """
    if max_tokens < 16:
        raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
    chunks: list[Chunk] = []
    for node in notice.nodes:
        if node.kind == "preamble":
            chunks.append(_make(notice, node, "preamble", "通报开头：巡察基本情况", "", node.start, node.end))
        elif node.kind == "contact":
            chunks.append(_make(notice, node, "contact", "意见建议反映渠道（联系方式）", "", node.start, node.end))
        elif node.kind == "part":
            chunks.extend(_part_chunks(notice, node, count_tokens, max_tokens))
    if count_tokens is None:
        return chunks
    return [piece for chunk in chunks for piece in _fit(notice, chunk, count_tokens, max_tokens)]


def _fit(notice: Notice, chunk: Chunk, count_tokens, max_tokens) -> list[Chunk]:
    """``chunk``, or its sentences in consecutive pieces each the model reads whole (a long
    paragraph with no points), each keeping the chunk's number, heading and topic."""
    if count_tokens(chunk.embedding_text()) <= max_tokens or len(chunk.sentences) < 2:
        return [chunk]
    head = count_tokens(chunk.embedding_text().split("\n", 1)[0] + "\n")
    pieces: list[list[tuple[int, int]]] = [[]]
    used = head
    for span in chunk.sentences:
        size = count_tokens(notice.text[span[0]:span[1]])
        if pieces[-1] and used + size > max_tokens:
            pieces.append([])
            used = head
        pieces[-1].append(span)
        used += size
    out = []
    for k, spans in enumerate(pieces, start=1):
        start, end = spans[0][0], spans[-1][1]
        out.append(Chunk(id=f"{chunk.id}-s{k}", doc=chunk.doc, anchor=f"{chunk.anchor}-s{k}", kind=chunk.kind,
                         number=chunk.number, heading=chunk.heading, path=chunk.path, topic=chunk.topic,
                         text=notice.text[start:end], start=start, end=end, sentences=list(spans)))
    return out


def _part_chunks(notice: Notice, part: Node, count_tokens, max_tokens) -> list[Chunk]:
    out: list[Chunk] = []
    first_child = part.children[0].start if part.children else part.end
    intro_start = _body_start(notice, part)
    intro_end = intro_start + len(notice.text[intro_start:first_child].rstrip())
    if intro_end > intro_start:
        out.append(_make(notice, part, "part", part.heading, "", intro_start, intro_end))
    for child in part.children:
        if child.kind == "point":  # part 一: 一是…四是, one chunk each
            out.append(_make(notice, child, "point", child.heading, part.heading,
                             child.start, child.end, number=child.number))
        elif child.kind == "section":
            out.append(_make(notice, child, "section", child.heading, part.heading,
                             _body_start(notice, child), child.end))
        elif child.kind == "topic":
            for item in child.children:
                out.extend(_item_chunks(notice, item, child.heading, count_tokens, max_tokens))
        elif child.kind == "item":
            out.extend(_item_chunks(notice, child, part.heading, count_tokens, max_tokens))
    return out


def _item_chunks(notice: Notice, item: Node, topic: str, count_tokens, max_tokens) -> list[Chunk]:
    whole = _make(notice, item, "item", item.heading, topic, _body_start(notice, item), item.end)
    points = [c for c in item.children if c.kind == "point"]
    if count_tokens is None or not points or count_tokens(whole.embedding_text()) <= max_tokens:
        return [whole]
    pieces = []
    for point in points:
        piece = _make(notice, item, "item", item.heading, topic, point.start, point.end, anchor=point.anchor,
                      number=item.number)
        pieces.append(piece)
    return pieces
