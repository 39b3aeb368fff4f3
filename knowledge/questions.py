"""Labelled questions about a notice: the format staff, benchmarks and the index share.

A question file is UTF-8 TSV with the header ``question	expected	kind``; ``expected`` is the
anchor of the passage that answers (``item-16``, ``part-1-p2``, ``contact``), several joined by
``|`` when each is right, or ``-`` when the notice does not answer. A notice's own file,
``knowledge/notices/<doc>.questions.tsv``, is what staff have labelled: the search learns from it
(questions like these find that passage) and the scope model learns when to decline.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Question:
    question: str
    expected: list[str]  # empty: out of scope
    kind: str

    @property
    def out_of_scope(self) -> bool:
        return not self.expected


def load_questions(path: str | Path) -> list[Question]:
    """Read a question file.

    :raises ValueError: with the line number when a row is malformed.
    """
    out = []
    # utf-8-sig: a file saved by a spreadsheet may start with a BOM. QUOTE_NONE: a question may
    # hold ASCII quotes ("明厨亮灶"是什么), which are text here, never CSV quoting.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["question", "expected"]:
            raise ValueError(f"{path}: the first line must be 'question<TAB>expected[<TAB>kind]'")
        for line_no, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{line_no}: expected 'question<TAB>expected', got {row!r}")
            expected = row[1].strip()
            if not expected:
                raise ValueError(f"{path}:{line_no}: no expected passage (an anchor, or '-' for out of scope)")
            anchors = [] if expected == "-" else [a.strip() for a in expected.split("|") if a.strip()]
            kind = row[2].strip() if len(row) > 2 and row[2].strip() else ("oos" if not anchors else "plain")
            out.append(Question(row[0].strip(), anchors, kind))
    return out


def anchor_matches(anchor: str, expected: list[str]) -> bool:
    """Whether a chunk's anchor is one of ``expected``; a split item's pieces (item-4-p2) count
    for their item."""
    return any(anchor == e or (e.startswith("item-") and anchor.startswith(e + "-p")) or anchor.startswith(e + "-s")
               for e in expected)
