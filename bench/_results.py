"""Write one benchmark's section of bench/RESULTS.md without touching the others' sections."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = (
    "# Benchmark results\n\n"
    "Written by the scripts in `bench/` (`make bench`); each section is replaced when its script runs.\n"
    "Machine: 2 cores, 24 GiB, no GPU, unless a section says otherwise.\n"
)


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md.

    :param name: a short key, e.g. ``embedding``; also the section's marker.
    :param markdown: the section body, starting with its own ``##`` heading.
    """
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = (
        f"<!-- BEGIN {name} -->\n{markdown.rstrip()}\n\n"
        f"_Measured {stamp} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}._\n<!-- END {name} -->"
    )
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else _HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: body, text)
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(RESULTS)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
