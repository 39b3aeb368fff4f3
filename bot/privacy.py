"""Personal data masked before a conversation is written anywhere (the conversation log, a tracker
store, the server log, the debug output).

Masked: mobile and landline numbers, 18-digit ID numbers (with the X check digit), bank-card
numbers, e-mail addresses, licence plates, and a name given after 我叫 / 我的名字是 / 本人姓名. The
notices' own published phone numbers and e-mail addresses are not anyone's personal data: they
are kept (``keep``).
"""

from __future__ import annotations

import re

MASK = "[已隐去]"
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")
_CARD_RE = re.compile(r"(?<!\d)\d{16,19}(?!\d)")
_MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
# 0763-3375826, (0763)3375826, 0763 3375826, 020-12345678
_LANDLINE_RE = re.compile(r"(?<!\d)(?:[(（]0\d{2,3}[)）]\s?|0\d{2,3}[-－—\s])\d{7,8}(?!\d)")
_PLATE_RE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z]\s?[A-HJ-NP-Z0-9]{4,5}[A-HJ-NP-Z0-9挂学警港澳]")
_NAME_RE = re.compile(r"(我叫|我的名字是|我的名字叫|本人姓名|本人叫|姓名[：:是])\s*([\u4e00-\u9fff·]{2,4}?)(?=[，,。.！!？?\s、；;]|是|$)")


def mask(text: str, keep: tuple[str, ...] = ()) -> str:
    """``text`` with personal numbers, addresses, plates and given names replaced by ``[已隐去]``.

    :param keep: strings the notices publish (their phone numbers and e-mail), left as they are.
    """
    if not text:
        return text
    kept = {k for k in keep if k}
    text = _EMAIL_RE.sub(lambda m: m.group() if m.group() in kept else MASK, text)
    text = _LANDLINE_RE.sub(lambda m: m.group() if _digits(m.group()) in {_digits(k) for k in kept} else MASK, text)
    for pattern in (_ID_RE, _CARD_RE, _MOBILE_RE, _PLATE_RE):
        text = pattern.sub(MASK, text)
    return _NAME_RE.sub(lambda m: m.group(1) + MASK, text)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)
