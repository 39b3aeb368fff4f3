"""Turn a rectification notice (巡察整改进展情况的通报) into its structure.

The genre is regular: a title, a preamble, parts ``一、二、三、``, topics ``（一）…`` that group
numbered items ``1.``–``28.`` (part 二), sections ``（一）…`` of plain paragraphs (part 三), points
``一是/二是/…`` inside items and parts, and a closing paragraph with the contact details. The parser
reads lines, classifies each by its label, and keeps every node's character offsets into the
source so that a quote can always be traced back to the published text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMERAL = "一二三四五六七八九十"

_PART_RE = re.compile(rf"^([{_NUMERAL}]+)\s*[、，,]\s*(\S.*)$")
_TOPIC_RE = re.compile(rf"^[（(]\s*([{_NUMERAL}]+)\s*[）)]\s*(\S.*)$")
_ITEM_RE = re.compile(r"^(\d{1,3})\s*[.．、](?!\d)\s*(\S.*)$")
# A problem labelled as such: 问题1：…, 问题十二、…
_PROBLEM_RE = re.compile(rf"^问题\s*(\d{{1,3}}|[{_NUMERAL}]+)\s*[：:、.．，,]\s*(\S.*)$")
# A point starts a paragraph or follows the end of a sentence or a label: 一是… 二是…, 整改情况：一是…
_POINT_RE = re.compile(rf"(?:(?<=^)|(?<=[。；;！!？?\n：:]))\s*([{_NUMERAL}]+)是")
# The same points written 第一、…第二、… (one form per body: the one that numbers more points wins).
_ORDINAL_POINT_RE = re.compile(rf"(?:(?<=^)|(?<=[。；;！!？?\n：:]))\s*第([{_NUMERAL}]+)[、，,]")
# 关于“……”的问题。整改情况：… — the heading is the problem, the text what was done about it.
_PROBLEM_HEADING_RE = re.compile(r"^关于[“\"「]([^”\"」]+)[”\"」]的?问题[。．.，,；;：:]?\s*")
_PROGRESS_LABEL_RE = re.compile(r"^(?:整改(?:情况|进展|进度|措施及成效|措施|成效)|落实情况)[：:]\s*")
_CONTACT_CUES = ("联系电话", "电子邮箱", "邮政编码", "邮政信箱", "来信来访", "举报电话")
_PHONE_RE = re.compile(r"(?:\d{3,4}[-－—]\d{7,8}|1[3-9]\d{9})")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_POSTCODE_RE = re.compile(r"邮政编码[：:]\s*(\d{6})")
_ADDRESS_RE = re.compile(r"(?:邮政信箱地址|通信地址|通讯地址|邮寄地址|地址)[：:]\s*([^；;。，,\n]+)")


def _is_contact(text: str) -> bool:
    # A cue word alone is not enough ("政务电子邮箱" appears in item text): the closing
    # paragraph also carries an actual phone number or e-mail address.
    return any(cue in text for cue in _CONTACT_CUES) and bool(_PHONE_RE.search(text) or _EMAIL_RE.search(text))


class NoticeParseError(ValueError):
    """The text is not a notice this parser understands (message: Chinese, then English)."""


def cn_to_int(numeral: str) -> int:
    """Convert a Chinese numeral up to 99 (``十六`` → 16, ``二十`` → 20).

    :raises ValueError: for anything else.
    """
    if not numeral or any(ch not in _CN_DIGITS and ch != "十" for ch in numeral):
        raise ValueError(f"not a Chinese numeral: {numeral!r}")
    if "十" not in numeral:
        if len(numeral) != 1:
            raise ValueError(f"not a Chinese numeral: {numeral!r}")
        return _CN_DIGITS[numeral]
    tens, _, ones = numeral.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        raise ValueError(f"not a Chinese numeral: {numeral!r}")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def int_to_cn(number: int) -> str:
    """Convert 1..99 to a Chinese numeral (16 → ``十六``)."""
    if not 0 < number < 100:
        raise ValueError(f"out of range: {number}")
    digits = "零一二三四五六七八九"
    tens, ones = divmod(number, 10)
    if tens == 0:
        return digits[ones]
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


@dataclass
class Node:
    """One unit of the notice's structure. ``text == notice.text[start:end]``."""

    kind: str
    label: str
    number: str
    heading: str
    start: int
    end: int
    anchor: str = ""
    path: str = ""
    text: str = ""
    children: list["Node"] = field(default_factory=list)
    # Offset where the node's own body starts (after its label/heading line).
    body_start: int = -1
    # Where the measures numbered 1. 2. … under a 问题N： item start (its points).
    measures: list[int] = field(default_factory=list, repr=False)
    # Whether the heading states the problem found (关于“……”的问题, 问题N：), not the measure taken.
    problem: bool = False

    def walk(self) -> Iterator["Node"]:
        """This node and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Contact:
    """The contact details the notice gives for comments."""

    phone: str = ""
    email: str = ""
    address: str = ""
    postcode: str = ""
    period: str = ""


@dataclass
class Notice:
    """A parsed notice: the source text and its tree of nodes."""

    doc: str
    text: str
    title_lines: list[str]
    nodes: list[Node]
    contact: Contact

    def walk(self) -> Iterator[Node]:
        """Every node, in document order."""
        for node in self.nodes:
            yield from node.walk()

    def find(self, anchor: str) -> Node | None:
        """The node with this anchor, or None."""
        return next((n for n in self.walk() if n.anchor == anchor), None)

    def items(self) -> list[Node]:
        """The numbered items, in order."""
        return [n for n in self.walk() if n.kind == "item"]

    def topics(self) -> list[Node]:
        """The topics （一）… that group numbered items, in order."""
        return [n for n in self.walk() if n.kind == "topic"]

    def item(self, number: int | str) -> Node | None:
        """The numbered item ``number`` (16 or "16"), or None."""
        return next((n for n in self.items() if n.number == str(number)), None)


@dataclass
class _Line:
    start: int
    end: int
    text: str


def _lines(text: str) -> list[_Line]:
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            out.append(_Line(pos + lead, pos + lead + len(stripped), stripped))
        pos += len(raw)
    return out


def _lead_sentence(rest: str) -> str:
    """The first sentence of a long paragraph, when it is short enough to head it (（一）压实责任，
    强化组织领导。…), else ""."""
    match = re.match(r"([^。；;！!？?]{2,60})[。；;！!？?]", rest)
    return match.group(1).strip() if match and match.end() < len(rest) else ""


def _item_heading(rest: str) -> tuple[str, int]:
    """An item's heading and where its text begins in ``rest``: 关于“……”的问题。整改情况：… is headed
    by the problem and its text is what follows the 整改情况 label; otherwise the label line's
    heading (:func:`_split_heading`)."""
    problem = _PROBLEM_HEADING_RE.match(rest)
    if problem:
        at = problem.end()
        label = _PROGRESS_LABEL_RE.match(rest[at:])
        return problem.group(1).strip().rstrip("。"), at + (label.end() if label else 0)
    heading = _split_heading(rest)
    at = rest.index(heading) + len(heading) if heading in rest else len(rest)
    label = _PROGRESS_LABEL_RE.match(rest[at:].lstrip("。；;：:，, "))
    if label:
        at = len(rest) - len(rest[at:].lstrip("。；;：:，, ")) + label.end()
    return heading, at


def _split_heading(rest: str) -> str:
    """The heading part of a label line: the whole line, or what precedes its body text."""
    match = _POINT_RE.search(rest)
    if match and match.start() > 0:
        return rest[: match.start()].strip().rstrip("。；;：:，,")
    cut = re.search(r"[。；;：:]", rest)
    if cut and cut.end() < len(rest):
        return rest[: cut.start()].strip()
    return rest.strip().rstrip("。")


class _Builder:
    def __init__(self, text: str, doc: str) -> None:
        self.text = text
        self.doc = doc
        self.nodes: list[Node] = []
        self.part: Node | None = None
        self.topic: Node | None = None
        self.item: Node | None = None
        self.closed = False  # after the contact paragraph only the signature follows
        # How this part numbers its items: "number" (1.) or "problem" (问题1：). Under a problem,
        # a 1. line is one of its measures, not another item.
        self.item_form: str | None = None

    def _deepest(self) -> Node | None:
        return self.item or self.topic or self.part

    def add(self, line: _Line) -> None:
        text = line.text
        if self.closed:
            self._signature(line)
            return
        if self.part is not None and _is_contact(text):
            self.nodes.append(Node("contact", "", "", "联系方式", line.start, line.end, body_start=line.start))
            self.part = self.topic = self.item = None
            self.closed = True
            return
        match = _PART_RE.match(text)
        if match and len(text) <= 60 and "。" not in text:
            node = Node("part", match.group(1) + "、", match.group(1), match.group(2).strip(), line.start, line.end)
            node.body_start = line.end
            self.nodes.append(node)
            self.part, self.topic, self.item = node, None, None
            self.item_form = None
            return
        match = _TOPIC_RE.match(text) if self.part is not None else None
        if match and (len(match.group(2)) <= 60 or _lead_sentence(match.group(2))):
            # （一）… on its own line, or opening a long paragraph whose first sentence heads it.
            heading = _split_heading(match.group(2)) if len(match.group(2)) <= 60 else _lead_sentence(match.group(2))
            node = Node("topic", f"（{match.group(1)}）", match.group(1), heading, line.start, line.end)
            node.body_start = line.start + text.index(heading) + len(heading) if heading in text else line.end
            while node.body_start < line.end and self.text[node.body_start] in "。；;：:，, ":
                node.body_start += 1
            self.part.children.append(node)
            self.topic, self.item = node, None
            return
        problem = _PROBLEM_RE.match(text) if self.part is not None else None
        match = _ITEM_RE.match(text) if self.part is not None and problem is None else None
        if match and self.item_form == "problem" and self.item is not None:
            self.item.measures.append(line.start)  # 1. under 问题3： is a measure of problem 3
            match = None
        if problem or match:
            self.item_form = self.item_form or ("problem" if problem else "number")
            raw_number, rest = (problem or match).group(1), (problem or match).group(2)
            number = raw_number if raw_number.isdigit() else str(cn_to_int(raw_number))
            offset = line.start + text.index(rest)
            heading, body_at = _item_heading(rest)
            label = f"问题{number}：" if problem else f"{number}."
            node = Node("item", label, number, heading, line.start, line.end)
            node.body_start = offset + body_at
            node.problem = bool(problem or _PROBLEM_HEADING_RE.match(rest))
            (self.topic or self.part).children.append(node)
            self.item = node
            return
        target = self._deepest()
        if target is None:
            self._header(line)
            return
        label = _PROGRESS_LABEL_RE.match(text) if self.item is not None else None
        if label and self.item.body_start >= self.item.end:
            # 整改措施及成效： on its own line (or opening the text) after the problem: the text
            # is what follows the label, never the label itself.
            self.item.body_start = line.start + label.end()
        for node in (self.item, self.topic, self.part):
            if node is not None:
                node.end = max(node.end, line.end)

    def _header(self, line: _Line) -> None:
        # Before the first part: title lines (no full stop) and the preamble paragraph(s).
        if "。" in line.text or (self.nodes and self.nodes[-1].kind == "preamble"):
            if self.nodes and self.nodes[-1].kind == "preamble":
                self.nodes[-1].end = line.end
            else:
                self.nodes.append(Node("preamble", "", "", "前言", line.start, line.end, body_start=line.start))
        else:
            self.nodes.append(Node("title", "", "", line.text, line.start, line.end, body_start=line.start))

    def _signature(self, line: _Line) -> None:
        if self.nodes and self.nodes[-1].kind == "signature":
            self.nodes[-1].end = line.end
        else:
            self.nodes.append(Node("signature", "", "", "落款", line.start, line.end, body_start=line.start))


def _add_points(node: Node, text: str, prefix: str) -> None:
    """Split ``node``'s body into points 一是/二是/…, accepting only the numbers in sequence."""
    body_start = max(node.body_start, node.start)
    body = text[body_start : node.end]
    found = []
    for pattern, form in ((_POINT_RE, "{}是"), (_ORDINAL_POINT_RE, "第{}、")):
        starts: list[tuple[int, str, int]] = []
        expected = 1
        for match in pattern.finditer(body):
            try:
                value = cn_to_int(match.group(1))
            except ValueError:
                continue
            if value == expected:
                label_start = body_start + match.start() + len(match.group(0)) - len(match.group(0).lstrip())
                starts.append((label_start, match.group(1), body_start + match.end() - label_start))  # label, its length
                expected += 1
        found.append((len(starts), form, starts))
    count, form, starts = max(found, key=lambda f: f[0])
    if count < 2:
        return
    points = []
    for index, (start, numeral, label_len) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else node.end
        end = start + len(text[start:end].rstrip())
        first = re.split(r"[。；;]", text[start + label_len : end], maxsplit=1)[0]
        points.append(
            Node(
                "point",
                form.format(numeral),
                numeral,
                first.strip()[:40],
                start,
                end,
                anchor=f"{prefix}-p{index + 1}",
                body_start=start,
            )
        )
    node.children.extend(points)


def _add_measures(node: Node, text: str, prefix: str) -> None:
    """The measures 1. 2. … under a 问题N： item, one point each (the last runs to the item's end,
    its status line with it)."""
    starts = node.measures
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else node.end
        end = start + len(text[start:end].rstrip())
        match = _ITEM_RE.match(text[start:end].split("\n", 1)[0])
        numeral = match.group(1) if match else str(index + 1)
        first = re.split(r"[。；;]", match.group(2) if match else text[start:end], maxsplit=1)[0]
        node.children.append(Node("point", f"{numeral}.", numeral, first.strip()[:40], start, end,
                                  anchor=f"{prefix}-p{index + 1}", body_start=start))


def _anchor_unique(anchor: str, seen: set[str]) -> str:
    candidate, n = anchor, 2
    while candidate in seen:
        candidate = f"{anchor}-{n}"
        n += 1
    seen.add(candidate)
    return candidate


def _finish(notice_text: str, nodes: list[Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.kind == "part":
            part_no = cn_to_int(node.number)
            node.anchor = _anchor_unique(f"part-{part_no}", seen)
            node.path = node.label
            for child in list(node.children):
                if child.kind == "topic" and not child.children:
                    child.kind = "section"  # a （一） heading over plain paragraphs (e.g. next steps)
                if child.kind in ("topic", "section"):
                    n = cn_to_int(child.number)
                    anchor = f"{child.kind}-{n}"
                    # Sections of two parts (part 一's paragraphs, part 三's next steps): the later
                    # part's are named by their part.
                    child.anchor = _anchor_unique(anchor if anchor not in seen else f"part-{part_no}-{anchor}", seen)
                    child.path = f"{node.label}{child.label}"
                    for item in child.children:
                        item.anchor = _anchor_unique(f"item-{item.number}", seen)
                        item.path = f"{child.path}第{item.number}条"
                elif child.kind == "item":
                    child.anchor = _anchor_unique(f"item-{child.number}", seen)
                    child.path = f"{node.label}第{child.number}条"
        elif node.kind in ("preamble", "contact", "signature"):
            node.anchor = _anchor_unique(node.kind, seen)
            node.path = {"preamble": "开头", "contact": "结尾", "signature": "落款"}[node.kind]
        elif node.kind == "title":
            node.anchor = _anchor_unique("title", seen)
            node.path = "标题"
    # Ends first (a parent spans its children), then points, then texts.
    for node in nodes:
        for sub in node.walk():
            for child in sub.children:
                sub.end = max(sub.end, child.end)
    for node in nodes:
        for sub in list(node.walk()):
            if sub.kind == "item" and len(sub.measures) >= 2:
                _add_measures(sub, notice_text, sub.anchor)
            elif sub.kind in ("item", "section") or (sub.kind == "part" and not sub.children):
                _add_points(sub, notice_text, sub.anchor)
            elif sub.kind == "part" and all(c.kind == "point" for c in sub.children):
                _add_points(sub, notice_text, sub.anchor)
    for node in nodes:
        for sub in node.walk():
            sub.text = notice_text[sub.start : sub.end]
            for child in sub.children:
                if child.kind == "point" and not child.path:
                    child.path = f"{sub.path} {child.label}"


def _contact(text: str) -> Contact:
    contact = Contact()
    if m := _PHONE_RE.search(text):
        contact.phone = m.group(0)
    if m := _EMAIL_RE.search(text):
        contact.email = m.group(0)
    if m := _POSTCODE_RE.search(text):
        contact.postcode = m.group(1)
    if m := _ADDRESS_RE.search(text):
        contact.address = m.group(1).strip()
    if m := re.search(r"公开期限[：:]\s*([^。；;\n]+)", text):
        contact.period = m.group(1).strip()
    return contact


def parse_notice(text: str, doc: str) -> Notice:
    """Parse a notice into its structure.

    :param text: the notice exactly as published (UTF-8 text).
    :param doc: the document id, used in error messages and citations.
    :returns: the parsed :class:`Notice`.
    :raises NoticeParseError: when the text has not the genre's structure (no parts, no numbered
        items or points), rather than returning one undivided chunk.
    """
    if not isinstance(text, str) or not text.strip():
        raise NoticeParseError(f"通报“{doc}”是空文件，无法解析。 / Notice {doc!r} is empty.")
    if "\x00" in text:
        raise NoticeParseError(f"通报“{doc}”不是文本文件。 / Notice {doc!r} is not a text file.")
    text = text.lstrip("\ufeff")
    builder = _Builder(text, doc)
    for line in _lines(text):
        builder.add(line)
    nodes = builder.nodes
    parts = [n for n in nodes if n.kind == "part"]
    if len(parts) < 2:
        raise NoticeParseError(
            f"通报“{doc}”中找不到“一、二、”这样的部分标题，无法按结构解析，请检查文件格式。"
            f" / Notice {doc!r} has fewer than two parts (一、二、…); it cannot be parsed into its structure."
        )
    _finish(text, nodes)
    notice = Notice(doc, text, [n.text for n in nodes if n.kind == "title"], nodes, Contact())
    if not notice.items() and not any(n.kind == "point" for n in notice.walk()):
        raise NoticeParseError(
            f"通报“{doc}”中没有编号条目（1. 2. …）或要点（一是、二是…），无法切分为可检索的段落。"
            f" / Notice {doc!r} has no numbered items or points; refusing to index it as one block."
        )
    contact = notice.find("contact")
    notice.contact = _contact(contact.text) if contact else Contact()
    return notice
