"""Item references in a question: "第16条", "第十六条", "16条是什么"."""

from __future__ import annotations

import re

from index.text import normalize
from knowledge.parser import cn_to_int

_ITEM_RE = re.compile(r"第\s*([0-9０-９]{1,3}|[一二三四五六七八九十两]{1,4})\s*[条项点]")
_BARE_ITEM_RE = re.compile(r"^\s*([0-9]{1,3}|[一二三四五六七八九十两]{1,4})\s*[条项]\s*(?:是什么|是啥|讲(?:的)?(?:什么|啥)|说(?:的)?(?:什么|啥)|内容)?\s*[?？。!！]*\s*$")


def parse_item_number(question: str) -> int | None:
    """The item number a question asks for ("第16条", "第十六条", "16条是什么"), or None."""
    text = normalize(question)
    match = _ITEM_RE.search(text) or _BARE_ITEM_RE.match(text)
    if not match:
        return None
    raw = match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")).replace("两", "二")
    try:
        return int(raw) if raw.isdigit() else cn_to_int(raw)
    except ValueError:
        return None
