"""Hybrid search on the real model and the real FAISS index, and the index's life cycle."""

import json
import shutil

import pytest
import yaml

from index.chunking import chunk_notice
from index.search import DEFAULT_WEIGHTS, Retriever
from index.text import normalize
from knowledge.store import NOTICES_DIR, load_library
from tests.conftest import DATA

pytestmark = pytest.mark.slow


def test_every_item_is_found_by_its_own_heading(retriever):
    notice = next(iter(retriever.library.notices.values()))
    for item in notice.items():
        hits = retriever.search(item.heading, top_k=1)
        assert hits[0].chunk.anchor == item.anchor, f"{item.heading!r} → {hits[0].chunk.anchor}"


QUESTION_TABLE = [
        ("应急广播建设进展如何", "item-16"),
        ("旅游景区的安全谁来管", "item-18"),
        ("党员干部的廉洁教育做了什么", "item-22"),
        ("入库级的文化和旅游特色镇有几个", "item-5"),
        ("固定资产清查了没有", "item-2"),
        ("工会会费按什么标准收", "item-23"),
        ("干部因私出国要怎么审批", "item-26"),
        ("演出票务怎么监管", "item-12"),
        ("巡察组什么时候来的", "preamble"),
        ("有意见往哪里反映", "contact"),
        ("下一步怎么推进全面从严治党", "section-2"),
        # Traditional Chinese is converted to Simplified first
        ("應急廣播建設進展如何", "item-16"),
        ("旅遊廁所建了多少座", "item-4"),
        ("非遺傳承人怎麼培養", "item-11"),
]


@pytest.mark.parametrize("question, anchor", QUESTION_TABLE)
def test_question_lands_on_its_item(retriever, question, anchor):
    hit = retriever.search(question, top_k=1)[0]
    assert hit.chunk.anchor == anchor


@pytest.mark.parametrize("question, anchor", QUESTION_TABLE)
def test_the_passages_alone_find_the_item_too(retriever, question, anchor):
    """Questions like these have been labelled, and their vote alone would carry the table above;
    the passage rankers must find the item without it."""
    passages_only = Retriever(retriever.embedder, build_dir=retriever.build_dir,
                              weights={**DEFAULT_WEIGHTS, "examples": 0.0})
    assert passages_only.search(question, top_k=1)[0].chunk.anchor == anchor


def test_the_question_table_is_not_among_the_labelled_questions(retriever):
    """The search learns from the notice's labelled questions; a question of the table above that
    were labelled would find its item by being asked before, and that test could not fail."""
    labelled = {normalize(q.question) for qs in retriever.library.questions.values() for q in qs}
    assert len(labelled) > 1000
    assert not [q for q, _ in QUESTION_TABLE if normalize(q) in labelled]


def test_hits_carry_each_rankers_view(retriever):
    hits = retriever.search("应急广播建设进展如何", top_k=5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    assert set(top.ranks) == set(top.scores) == {"dense", "about", "sentence", "bm25", "bigram", "examples"}
    assert top.bm25_rank == 1 and top.bm25_score > 0
    assert 0.8 < top.dense_score <= 1.0


def test_synonyms_expand_the_query(retriever):
    expanded = retriever.expand("景点的厕所够不够")
    assert "旅游景区" in expanded and "旅游厕所" in expanded


def test_manifest_records_sources_and_model(retriever):
    manifest = retriever.manifest
    assert manifest["model"] == retriever.embedder.name
    assert manifest["dimension"] == 384
    assert manifest["chunks"] == len(retriever.chunks) == 39
    assert {"qingyuan-wlj-xuncha-2025/notice.txt", "qingyuan-wlj-xuncha-2025/questions.tsv"} <= set(manifest["sources"])
    index_files = {"chunks.faiss", "about.faiss", "sentences.faiss", "examples.faiss", "chunks.json"}
    assert set(manifest["files"]) == index_files | {f"sources/{name}" for name in manifest["sources"]}
    assert manifest["examples"] == len(retriever.library.questions["qingyuan-wlj-xuncha-2025"])


def _copy(small_index, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(small_index.build_dir, build)
    return Retriever(small_index.embedder, library_dir=small_index.library_dir, build_dir=build), build


def test_a_damaged_index_is_rebuilt_not_used(small_index, tmp_path):
    fresh, build = _copy(small_index, tmp_path)
    faiss_file = build / "current" / "chunks.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])  # truncated
    fresh.warm_up()
    assert fresh.search("防溺水教育怎么做的", top_k=1)[0].chunk.anchor == "item-7"
    assert len(faiss_file.read_bytes()) > 100


def test_if_needed_sees_a_truncated_file(small_index, tmp_path):
    """`bot index --if-needed` asks is_current(): it checks the files' hashes, not only the fields."""
    fresh, build = _copy(small_index, tmp_path)
    assert fresh.is_current()
    faiss_file = build / "current" / "sentences.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-10])
    assert not fresh.is_current()


def test_an_interrupted_builds_leftovers_are_removed_at_the_next_start(small_index, tmp_path):
    import os
    import time

    fresh, build = _copy(small_index, tmp_path)
    left = build / ".current-abc123"
    left.mkdir()
    (left / "chunks.json").write_text("{}", encoding="utf-8")
    half = build / "nlu-0123.tmp.npy"
    half.write_bytes(b"half")
    recent = build / ".current-now"
    recent.mkdir()  # a build running now is left alone
    old = time.time() - 3600
    for path in (left, half):
        os.utime(path, (old, old))
    fresh.warm_up()
    assert not left.exists() and not half.exists() and recent.exists()
    assert fresh.search("防溺水教育怎么做的", top_k=1)[0].chunk.anchor == "item-7"


def test_garbage_manifest_and_mismatched_model_rebuild(small_index, tmp_path):
    fresh, build = _copy(small_index, tmp_path)
    manifest_path = build / "current" / "manifest.json"
    manifest_path.write_text("{not json", encoding="utf-8")
    fresh.warm_up()
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["chunks"] == len(fresh.chunks)

    manifest["model"] = "some-other-model"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    stale = Retriever(small_index.embedder, library_dir=small_index.library_dir, build_dir=build)
    assert not stale.is_current()
    stale.warm_up()
    assert stale.is_current()


def test_a_changed_notice_triggers_a_rebuild(small_index, tmp_path):
    library = tmp_path / "notices"
    shutil.copytree(small_index.library_dir, library)
    build = tmp_path / "build"
    shutil.copytree(small_index.build_dir, build)
    first = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    assert first.is_current()
    text_file = library / "notice_small.txt"
    text_file.write_text(text_file.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    second = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    assert not second.is_current()
    second.warm_up()
    assert second.is_current()
    assert second.manifest["sources"]["notice_small.txt"] != small_index.manifest["sources"]["notice_small.txt"]


LABELLED = (
    "question\texpected\tkind\n"
    "放学以后孩子没地方去，学校管不管？\titem-2\tcolloquial\n"
    "学校的饭菜让人放心吗\titem-6\tcolloquial\n"
    "今年中考什么时候报名\t-\toos\n"
)


@pytest.fixture(scope="module")
def small_labelled(small_index, tmp_path_factory):
    """The small notice with three questions staff have labelled (two answerable, one not)."""
    root = tmp_path_factory.mktemp("small-labelled")
    library = root / "notices"
    shutil.copytree(small_index.library_dir, library)
    (library / "notice_small.questions.tsv").write_text(LABELLED, encoding="utf-8")
    built = Retriever(small_index.embedder, library_dir=library, build_dir=root / "build")
    built.warm_up()
    return built


@pytest.mark.parametrize("question, anchor", [("娃放学后没人管咋办", "item-2"), ("孩子在学校吃得放心吗", "item-6")])
def test_labelled_questions_teach_the_search(small_index, small_labelled, question, anchor):
    """Other words for a labelled question find its passage; without the label they do not."""
    assert small_index.search(question, top_k=1)[0].chunk.anchor != anchor
    hit = small_labelled.search(question, top_k=1)[0]
    assert hit.chunk.anchor == anchor
    assert hit.scores["examples"] > 0.9 and hit.ranks["examples"] == 1


def test_a_far_labelled_question_does_not_vote(small_index, small_labelled):
    """学校门口的牌子 (the admissions results posted at the gate, 第3条) is like no labelled
    question: item-6's label must not pull it away, however few passages are labelled."""
    for searcher in (small_index, small_labelled):
        assert searcher.search("学校门口的牌子", top_k=1)[0].chunk.anchor == "item-3"


def test_labelled_questions_tell_how_near_the_question_is_to_each_kind(small_index, small_labelled):
    unanswerable = small_labelled.search_full("中考哪天报名")
    answerable = small_labelled.search_full("孩子在学校吃得放心吗")
    assert unanswerable.labelled_unanswerable > unanswerable.labelled_answerable
    assert answerable.labelled_answerable > answerable.labelled_unanswerable
    assert small_labelled.manifest["examples"] == 3
    # A notice nobody has labelled questions for says nothing either way.
    bare = small_index.search_full("中考哪天报名")
    assert bare.labelled_answerable is None and bare.labelled_unanswerable is None


def test_a_labelled_point_or_topic_stands_for_the_passages_that_hold_it(small_index, tmp_path):
    """Staff may label with any anchor of the notice: a point of an item the model keeps whole
    votes for the item, a topic for its items; only what no passage holds is left out."""
    library = tmp_path / "notices"
    shutil.copytree(small_index.library_dir, library)
    (library / "notice_small.questions.tsv").write_text(
        "question\texpected\nx\titem-7-p2\ny\ttopic-3\nz\ttitle\n", encoding="utf-8")
    built = Retriever(small_index.embedder, library_dir=library, build_dir=tmp_path / "build")
    built.warm_up()
    anchors = {text: sorted(built.chunks[i].anchor for i in targets) for text, _, targets in built.labelled.examples}
    assert anchors == {"x": ["item-7"], "y": ["item-6", "item-7"]}


def test_reciprocal_rank_fusion_counts_only_close_labelled_questions(small_labelled):
    rrf = Retriever(small_labelled.embedder, library_dir=small_labelled.library_dir,
                    build_dir=small_labelled.build_dir, fusion="rrf")
    hit = rrf.search("学校门口的牌子", top_k=1)[0]
    assert hit.ranks["examples"] == len(rrf.chunks) + 1  # item-6's label is too far to vote


def test_leave_one_out_judges_a_labelled_question_without_itself(small_labelled):
    asked = "学校的饭菜让人放心吗"
    result = small_labelled.search_full(asked, top_k=1)
    assert result.hits[0].scores["examples"] == pytest.approx(1.0, abs=1e-3)
    item_6 = next(c for c in small_labelled.chunks if c.anchor == "item-6")
    assert small_labelled.nearest_labelled(result, item_6)[0] == asked
    small_labelled.leave_one_out = True
    try:
        result = small_labelled.search_full(asked, top_k=5)
        # item-6 has no other labelled question: no vote, nothing to show, no answerable neighbour.
        assert next(h for h in result.hits if h.chunk.anchor == "item-6").scores["examples"] == 0.0
        assert small_labelled.nearest_labelled(result, item_6) is None
        assert result.labelled_answerable < 0.99
    finally:
        small_labelled.leave_one_out = False


class _CountingEmbedder:
    """The real embedder, counting the questions it is asked to embed."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.queries: list[str] = []

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_queries(self, texts):
        self.queries.extend(texts)
        return self._embedder.embed_queries(texts)


def test_a_changed_question_file_triggers_a_rebuild_that_embeds_only_what_is_new(small_labelled, tmp_path):
    library = tmp_path / "notices"
    shutil.copytree(small_labelled.library_dir, library)
    build = tmp_path / "build"
    shutil.copytree(small_labelled.build_dir, build)
    assert Retriever(small_labelled.embedder, library_dir=library, build_dir=build).is_current()
    with (library / "notice_small.questions.tsv").open("a", encoding="utf-8") as fh:
        fh.write("防溺水怎么教\titem-7\tplain\n")
    counting = _CountingEmbedder(small_labelled.embedder)
    again = Retriever(counting, library_dir=library, build_dir=build)
    assert not again.is_current()
    again.warm_up()
    assert again.manifest["examples"] == 4
    assert counting.queries == ["防溺水怎么教"]
    assert again.search("娃放学后没人管咋办", top_k=1)[0].chunk.anchor == "item-2"
    # A damaged index lends nothing: every labelled question is embedded anew.
    (build / "current" / "examples.faiss").write_bytes(b"damaged")
    counting.queries.clear()
    Retriever(counting, library_dir=library, build_dir=build).warm_up()
    assert len(counting.queries) == 4


@pytest.fixture(scope="module")
def without_aliases(retriever, tmp_path_factory):
    """The published notice with its ``aliases`` taken out of the metadata (and no labelled
    questions)."""
    root = tmp_path_factory.mktemp("no-aliases")
    library = root / "notices"
    library.mkdir()
    seed = NOTICES_DIR / "qingyuan-wlj-xuncha-2025"
    (library / seed.name).mkdir()
    shutil.copy(seed / "notice.txt", library / seed.name)
    meta = yaml.safe_load((seed / "notice.yml").read_text(encoding="utf-8"))
    del meta["aliases"]
    (library / seed.name / "notice.yml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    built = Retriever(retriever.embedder, library_dir=library, build_dir=root / "build")
    built.warm_up()
    return built


@pytest.mark.parametrize(
    "question, anchor",
    [("局里的家底清点过没有", "item-2"), ("老手艺有人学吗", "item-11"), ("附近没地方锻炼身体", "item-13")],
)
def test_staff_aliases_bridge_everyday_words(retriever, without_aliases, question, anchor):
    """家底 (固定资产), 老手艺 (非遗), 锻炼的地方 (健身场地): the words are not in the notice, the
    model does not link them, the aliases in the notice's metadata do — and they are the reason
    (the labelled questions, which might know these words too, are left out of both)."""
    aliases_only = Retriever(retriever.embedder, build_dir=retriever.build_dir,
                             weights={**DEFAULT_WEIGHTS, "examples": 0.0})
    assert aliases_only.search(question, top_k=1)[0].chunk.anchor == anchor
    assert without_aliases.search(question, top_k=1)[0].chunk.anchor != anchor


def test_about_ranker_reads_heading_and_aliases(retriever):
    chunk = next(c for c in retriever.chunks if c.anchor == "item-2")
    assert retriever.about_text(chunk).startswith(chunk.title)
    assert "家底" in retriever.about_text(chunk)
    hit = retriever.search("家底", top_k=1)[0]
    assert hit.chunk.anchor == "item-2" and hit.ranks["about"] == 1


def test_rank_fusion_is_still_available(retriever):
    rrf = Retriever(retriever.embedder, build_dir=retriever.build_dir, fusion="rrf")
    hits = rrf.search("应急广播建设进展如何", top_k=3)
    assert hits[0].chunk.anchor == "item-16"
    assert hits[0].score <= sum(rrf.weights.values()) / (rrf.rrf_k + 1) + 1e-9


def test_bad_settings_are_refused(retriever):
    with pytest.raises(ValueError, match="top_k"):
        Retriever(retriever.embedder, top_k=0)
    with pytest.raises(ValueError, match="fusion"):
        Retriever(retriever.embedder, fusion="max")
    with pytest.raises(ValueError, match="unknown rankers"):
        Retriever(retriever.embedder, weights={"magic": 1.0})


def test_chunks_are_slices_of_the_notice_with_sentences():
    library = load_library()
    notice = next(iter(library.notices.values()))
    chunks = chunk_notice(notice)
    assert [c.anchor for c in chunks][:3] == ["preamble", "part-1", "part-1-p1"]
    assert chunks[-1].anchor == "contact"
    for chunk in chunks:
        assert notice.text[chunk.start : chunk.end] == chunk.text
        assert chunk.sentences, chunk.anchor
        for s, e in chunk.sentences:
            assert chunk.start <= s < e <= chunk.end
    item16 = next(c for c in chunks if c.anchor == "item-16")
    assert item16.title == "第16条 大力推进应急广播系统建设"
    assert item16.path == "二、（四）第16条"
    assert item16.embedding_text().startswith("关于推动体育和广播电视事业发展工作方面 第16条 大力推进应急广播系统建设\n")


def test_an_item_too_long_for_the_model_is_split_by_its_points():
    notice = next(iter(load_library().notices.values()))
    chunks = chunk_notice(notice, count_tokens=len, max_tokens=300)  # characters as a stand-in count
    pieces = [c for c in chunks if c.anchor.startswith("item-4")]
    assert [c.anchor for c in pieces] == [f"item-4-p{i}" for i in range(1, 6)]
    assert all(c.number == "4" and c.heading.startswith("扎实推进旅游大市建设") for c in pieces)
    assert pieces[3].text.startswith("四是提升供给水平和服务质量")


def test_labels_written_while_answering_are_answered_with_at_once_and_undone(small_index, tmp_path):
    """Staff label a question while the server answers from an index built without it: relabel
    embeds only that question, the next search answers with it, a search under way keeps the set
    it started with, and taking the label away takes its vote away. No index is built."""
    library, build = tmp_path / "notices", tmp_path / "build"
    shutil.copytree(small_index.library_dir, library)
    shutil.copytree(small_index.build_dir, build)
    counting = _CountingEmbedder(small_index.embedder)
    live = Retriever(counting, library_dir=library, build_dir=build)
    live.load_last_good()
    built_at = live.manifest["built_at"]
    before = live.search_full("娃放学后没人管咋办")
    assert before.hits[0].chunk.anchor != "item-2"
    seen = live.labels_on_disk()

    (library / "notice_small.questions.tsv").write_text(LABELLED, encoding="utf-8")
    assert live.labels_on_disk() != seen
    counting.queries.clear()
    assert live.relabel() == {"examples": 3, "embedded": 3}
    assert sorted(counting.queries) == sorted(normalize(line.split("\t")[0]) for line in LABELLED.splitlines()[1:])
    hit = live.search("娃放学后没人管咋办", top_k=1)[0]
    assert hit.chunk.anchor == "item-2" and hit.ranks["examples"] == 1
    assert live.search_full("中考哪天报名").labelled_unanswerable is not None
    assert live.manifest["built_at"] == built_at  # answered with, not rebuilt
    # The search made before the label still reads the set it was made with.
    item_2 = next(c for c in live.chunks if c.anchor == "item-2")
    assert live.nearest_labelled(before, item_2) is None

    # Undo: the row leaves the file, its vote leaves the search; nothing is embedded again.
    rows = LABELLED.splitlines()
    (library / "notice_small.questions.tsv").write_text("\n".join([rows[0], *rows[2:]]) + "\n", encoding="utf-8")
    counting.queries.clear()
    assert live.relabel() == {"examples": 2, "embedded": 0}
    assert live.search("娃放学后没人管咋办", top_k=1)[0].chunk.anchor != "item-2"


def test_a_question_file_that_cannot_be_read_leaves_the_labels_as_they_were(small_labelled, tmp_path):
    library, build = tmp_path / "notices", tmp_path / "build"
    shutil.copytree(small_labelled.library_dir, library)
    shutil.copytree(small_labelled.build_dir, build)
    live = Retriever(small_labelled.embedder, library_dir=library, build_dir=build)
    live.load_last_good()
    (library / "notice_small.questions.tsv").write_text("no header here\n", encoding="utf-8")
    assert live.relabel() == {"examples": 3, "embedded": 0}
    assert live.search("娃放学后没人管咋办", top_k=1)[0].chunk.anchor == "item-2"
