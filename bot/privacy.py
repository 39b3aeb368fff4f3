"""Personal data masked before a conversation is written anywhere (a tracker store, a log).

Masked: mobile numbers, 18-digit ID numbers (with the X check digit), bank-card numbers and
e-mail addresses, except the ones a notice itself publishes (its own e-mail is no one's private
address). Landline numbers are left: the notices publish theirs, and a citizen's own is rarely
typed into a question.
"""

from __future__ import annotations

import re

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_CARD_RE = re.compile(r"(?<!\d)\d{16,19}(?!\d)")


def mask(text: str, keep: tuple[str, ...] = ()) -> str:
    """``text`` with personal numbers and addresses replaced by ``[已隐去]``.

    :param keep: strings published by the notices (their e-mail), left as they are.
    """
    if not text:
        return text
    text = _EMAIL_RE.sub(lambda m: m.group() if m.group() in keep else "[已隐去]", text)
    for pattern in (_ID_RE, _CARD_RE, _MOBILE_RE):
        text = pattern.sub("[已隐去]", text)
    return text
