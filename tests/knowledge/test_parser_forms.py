"""The genre's common forms, as the two fictional test notices write them (tests/data/library/):
`1.关于“……”的问题。整改情况：一是……`, （1）（2） sub-points, part 一 and 三 as long （一）…
paragraphs, and `问题1：` with measures 1.–4. and a status line under each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.chunking import MAX_TOKENS, chunk_notice
from index.text import split_sentences
from knowledge.parser import parse_notice
from knowledge.store import NOTICES_DIR

DATA = Path(__file__).resolve().parents[1] / "data"
FORMS = {
    "qingyuan-wlj-xuncha-2025": NOTICES_DIR / "qingyuan-wlj-xuncha-2025" / "notice.txt",
    "hexi-wjj-xuncha-2025": DATA / "library" / "hexi-wjj-xuncha-2025" / "notice.txt",
    "nanshan-jtj-xuncha-2024": DATA / "library" / "nanshan-jtj-xuncha-2024" / "notice.txt",
}


def _parse(doc):
    return parse_notice(FORMS[doc].read_text(encoding="utf-8"), doc)


@pytest.mark.parametrize("doc, items, topics", [("qingyuan-wlj-xuncha-2025", 28, 11), ("hexi-wjj-xuncha-2025", 12, 4),
                                                ("nanshan-jtj-xuncha-2024", 8, 0)])
def test_the_items_are_the_problems(doc, items, topics):
    notice = _parse(doc)
    assert [int(i.number) for i in notice.items()] == list(range(1, items + 1))
    assert len(notice.topics()) == topics


def test_a_problem_heading_loses_its_wrapping_and_its_text_the_progress_label():
    notice = _parse("hexi-wjj-xuncha-2025")
    item = notice.item(6)
    assert item.heading == "群众看病就医便利度不高，‘挂号难、缴费排队长’问题仍然突出"
    body = notice.text[item.body_start:item.end]
    assert body.startswith("一是") and "整改情况" not in body[:10]
    # 一是 right after 整改情况： is a point, and every problem has its points
    assert all(len([c for c in i.children if c.kind == "point"]) >= 2 for i in notice.items())
    # the status line stays with its problem
    assert "已完成整改" in notice.item(12).text


def test_measures_numbered_under_a_problem_are_its_points_not_items():
    notice = _parse("nanshan-jtj-xuncha-2024")
    first = notice.item(1)
    points = [c for c in first.children if c.kind == "point"]
    assert [p.label for p in points] == ["1.", "2.", "3.", "4."]
    assert not points[0].heading.startswith("1.") and not points[-1].heading.startswith("4.")
    assert "整改措施及成效" not in notice.text[first.body_start:first.end]
    assert "整改进度" in first.text  # the status line belongs to the problem
    part_one = notice.find("part-1")
    assert [p.label for p in part_one.children] == ["第一、", "第二、", "第三、"]


def test_long_paragraphs_under_a_numbered_heading_are_headed_by_their_first_sentence():
    notice = _parse("hexi-wjj-xuncha-2025")
    sections = [c for c in notice.find("part-1").children if c.kind == "section"]
    assert len(sections) == 3 and sections[0].heading == "提高政治站位，切实扛牢巡察整改政治责任"
    assert notice.text[sections[0].body_start] not in "。；，"
    later = [c for c in notice.find("part-3").children if c.kind == "section"]
    assert len(later) == 3 and len({s.anchor for s in sections + later}) == 6


@pytest.mark.parametrize("doc", sorted(FORMS))
def test_no_chunk_exceeds_the_window_and_every_sentence_is_in_exactly_one_chunk(doc, bot):
    notice = _parse(doc)
    count = bot.embedder.token_count
    chunks = chunk_notice(notice, count)
    assert all(count(c.embedding_text()) <= MAX_TOKENS or len(c.sentences) < 2 for c in chunks)
    covered = [span for c in chunks for span in c.sentences]
    assert len(covered) == len(set(covered))
    # every sentence of the body text (parts, preamble, contact) stands in one chunk
    for node in notice.nodes:
        if node.kind in ("preamble", "contact", "part"):
            for span in split_sentences(notice.text[node.start:node.end], node.start):
                text = notice.text[span[0]:span[1]].strip()
                label = re.match(r"\s*(?:\S{2,8}[：:]\s*)?", notice.text[span[0]:span[1]])  # 整改情况：
                start = span[0] + (label.end() if label else 0)
                if len(text) > 8 and not any(c.start <= start and span[1] <= c.end for c in chunks):
                    heading_only = any(text in (n.heading + "。") or text.startswith(n.label) for n in node.walk())
                    assert heading_only, f"{doc}: not in any chunk: {text[:40]}"


def test_a_long_paragraph_with_no_points_is_cut_by_sentences_into_pieces_that_keep_its_heading(bot):
    text = FORMS["hexi-wjj-xuncha-2025"].read_text(encoding="utf-8")
    notice = parse_notice(text, "hexi")
    chunks = chunk_notice(notice, bot.embedder.token_count, max_tokens=120)
    pieces = [c for c in chunks if c.anchor.startswith("section-1")]
    assert len(pieces) >= 2 and all(p.heading == "提高政治站位，切实扛牢巡察整改政治责任" for p in pieces)
    assert [p.anchor for p in pieces] == [f"section-1-s{k}" for k in range(1, len(pieces) + 1)]
