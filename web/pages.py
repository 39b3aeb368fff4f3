"""The pages: a bureau's news page carrying the widget (the demo), the notices index, and each
notice in full, an anchor per passage, the quoted sentences marked."""

from __future__ import annotations

import re

from flask import Blueprint, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.exceptions import NotFound

from web.common import MAX_HIGHLIGHTS, current_library, site_name, welcome

bp = Blueprint("pages", __name__)

_HL_RE = re.compile(r"^(\d{1,7})-(\d{1,7})$")


def _parse_highlights(raw: str | None, length: int) -> list[tuple[int, int]]:
    """``?hl=5124-5159,5191-5232`` → sorted, merged spans inside the text; bad pieces are ignored."""
    spans = []
    for piece in (raw or "").split(",")[:MAX_HIGHLIGHTS]:
        match = _HL_RE.match(piece.strip())
        if not match:
            continue
        start, end = int(match.group(1)), min(int(match.group(2)), length)
        if 0 <= start < end:
            spans.append((start, end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged

_BLOCK_KINDS = {"title", "preamble", "part", "topic", "item", "section", "contact", "signature"}


def render_notice(notice, highlights: list[tuple[int, int]]) -> Markup:
    """The notice as HTML: a block per node with its anchor as ``id``, points as inline spans,
    ``highlights`` (absolute offsets) wrapped in ``<mark>``. Every piece of text is escaped."""
    text = notice.text
    out: list[str] = []

    def inline(start: int, end: int, points: list, bold_end: int) -> str:
        cuts = {start, end, bold_end}
        for p in points:
            cuts.update((p.start, p.end))
        for s, e in highlights:
            cuts.update((s, e))
        cuts = sorted(c for c in cuts if start <= c <= end)
        html, open_point, seen = [], None, set()
        for a, b in zip(cuts, cuts[1:]):
            if a >= b:
                continue
            point = next((p for p in points if p.start <= a and b <= p.end), None)
            if point is not open_point:
                if open_point is not None:
                    html.append("</span>")
                if point is not None:
                    ident = "" if point.anchor in seen else f' id="{escape(point.anchor)}"'
                    seen.add(point.anchor)
                    html.append(f'<span class="point"{ident}>')
                open_point = point
            piece = str(escape(text[a:b]))
            if any(s <= a and b <= e for s, e in highlights):
                piece = f"<mark>{piece}</mark>"
            if b <= bold_end:
                piece = f'<strong class="head">{piece}</strong>'
            html.append(piece)
        if open_point is not None:
            html.append("</span>")
        return "".join(html).replace("</mark><mark>", "")

    def lines(node, start: int, end: int, first_line_tag: str | None) -> None:
        points = [c for c in node.children if c.kind == "point"] if node is not None else []
        bold_end = node.body_start if node is not None and node.kind == "item" else start
        pos = start
        for raw in text[start:end].splitlines(keepends=True):
            s, e = pos, pos + len(raw.rstrip("\r\n"))
            pos += len(raw)
            body = text[s:e]
            if not body.strip():
                continue
            s += len(body) - len(body.lstrip())
            e -= len(body) - len(body.rstrip())
            tag = first_line_tag or "p"
            first_line_tag = None
            out.append(f"<{tag}>{inline(s, e, points, bold_end)}</{tag}>")

    heading_tags = {"part": "h2", "topic": "h3", "section": "h3"}

    def block(node) -> None:
        kind = node.kind
        out.append(f'<div class="node {kind}" id="{escape(node.anchor)}" tabindex="-1">')
        pos, first = node.start, heading_tags.get(kind)
        for child in node.children:
            if child.kind not in _BLOCK_KINDS:
                continue
            lines(node, pos, child.start, first)
            first = None
            block(child)
            pos = child.end
        lines(node, pos, node.end, first)
        out.append("</div>")

    titles = [n for n in notice.nodes if n.kind == "title"]
    if titles:
        out.append('<h1 class="notice-title">')
        out.append("<br>".join(f'<span id="{escape(t.anchor)}">{escape(t.text.strip())}</span>' for t in titles))
        out.append("</h1>")
    for node in notice.nodes:
        if node.kind != "title":
            block(node)
    return Markup("".join(out))


def notice_page(doc: str | None = None):
    """The whole notice, an anchor per node; ``?hl=s-e,…`` marks the quoted sentences."""
    library = current_library()
    if doc is None:
        doc = next(iter(library.notices))
    notice = library.notices.get(doc)
    if notice is None:
        raise NotFound(f"no notice {doc!r}")
    meta = library.meta[doc]
    highlights = _parse_highlights(request.args.get("hl"), len(notice.text))
    return render_template(
        "notice.html", meta=meta, body=render_notice(notice, highlights), contact=notice.contact,
        marked=bool(highlights), site_name=site_name(meta),
    )


def demo():
    """A bureau's news page carrying the widget, as citizens will see it (``?doc=`` chooses which
    notice's page; the widget on it answers about that notice first)."""
    library = current_library()
    doc = request.args.get("doc") or next(iter(library.notices))
    if doc not in library.notices:
        raise NotFound(f"no notice {doc!r}")
    notice, meta = library.notices[doc], library.meta[doc]
    preamble = notice.find("preamble")
    others = [m for d, m in library.meta.items() if d != doc]
    return render_template(
        "demo.html", meta=meta, site_name=site_name(meta), contact=notice.contact,
        preamble=preamble.text.strip() if preamble else "", topics=notice.topics() or notice.items(),
        notice_url=url_for("pages.notice_doc", doc=meta.doc), others=others,
        example=(welcome(doc) or ["整改了哪些方面？"])[0],
    )


def notices_index():
    """Every notice the site publishes, newest first, with its issuer, date and comment period."""
    library = current_library()
    metas = sorted(library.meta.values(), key=lambda m: m.date, reverse=True)
    first = library.notices[metas[0].doc]
    return render_template("notices.html", metas=metas, site_name=site_name(metas[0]), contact=first.contact)


bp.add_url_rule("/", "demo", demo)
bp.add_url_rule("/notice", "notice", notice_page)
bp.add_url_rule("/notices", "notices_index", notices_index)
bp.add_url_rule("/notice/<doc>", "notice_doc", notice_page)
