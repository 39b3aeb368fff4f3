"""The parser on the published notice, on a second notice of another numbering mix, and on junk."""

import shutil
from pathlib import Path

import pytest

from knowledge.parser import NoticeParseError, cn_to_int, int_to_cn, parse_notice
from knowledge.store import NOTICES_DIR, load_library

DATA = Path(__file__).resolve().parent.parent / "data"
SEED = NOTICES_DIR / "qingyuan-wlj-xuncha-2025" / "notice.txt"


@pytest.fixture(scope="module")
def notice():
    return parse_notice(SEED.read_text(encoding="utf-8"), "qingyuan-wlj-xuncha-2025")


def test_every_node_is_a_slice_of_the_source(notice):
    for node in notice.walk():
        assert node.text == notice.text[node.start : node.end], node.anchor
        assert node.text == node.text.strip(), node.anchor


def test_top_level_shape(notice):
    kinds = [n.kind for n in notice.nodes]
    assert kinds == ["title", "title", "title", "preamble", "part", "part", "part", "contact", "signature"]
    assert [p.heading for p in notice.nodes if p.kind == "part"] == [
        "市文化广电旅游体育局党组履行巡察整改主体责任情况",
        "巡察整改任务落实情况",
        "下一步工作安排",
    ]


def test_part_one_has_four_points(notice):
    part = notice.find("part-1")
    assert [c.anchor for c in part.children] == ["part-1-p1", "part-1-p2", "part-1-p3", "part-1-p4"]
    assert part.children[0].heading == "深化认识，提高政治站位"


def test_eleven_topics_and_28_items_in_order(notice):
    topics = notice.topics()
    assert [t.anchor for t in topics] == [f"topic-{i}" for i in range(1, 12)]
    assert topics[3].heading == "关于推动体育和广播电视事业发展工作方面"
    items = notice.items()
    assert [i.number for i in items] == [str(i) for i in range(1, 29)]
    assert [i.anchor for i in items] == [f"item-{i}" for i in range(1, 29)]


@pytest.mark.parametrize(
    "number, heading, path, points",
    [
        (1, "严格纪律执行，狠抓会风会纪", "二、（一）第1条", 3),
        (4, "扎实推进旅游大市建设和北江生态（文化旅游）经济带建设", "二、（二）第4条", 5),
        (16, "大力推进应急广播系统建设", "二、（四）第16条", 3),
        (21, "强化专题研究部署保密工作", "二、（七）第21条", 3),
        (28, "全面提升机关党建质量", "二、（十一）第28条", 3),
    ],
)
def test_items(notice, number, heading, path, points):
    item = notice.item(number)
    assert item.heading == heading
    assert item.path == path
    assert len(item.children) == points
    assert all(p.kind == "point" for p in item.children)
    assert item.children[0].text.startswith("一是")


def test_next_steps_are_sections(notice):
    part = notice.find("part-3")
    assert [(c.kind, c.anchor, c.heading) for c in part.children] == [
        ("section", "section-1", "加强党的政治建设"),
        ("section", "section-2", "坚定不移推进全面从严治党"),
        ("section", "section-3", "深化巡察整改成果"),
    ]


def test_contact_paragraph_and_details(notice):
    contact = notice.find("contact")
    assert contact.text.startswith("欢迎广大干部群众")
    assert notice.contact.phone == "0763-3375826"
    assert notice.contact.email == "qywgltj@gdqy.gov.cn"
    assert notice.contact.postcode == "511518"
    assert notice.contact.address == "清远市新城银泉路图书馆大楼六楼"
    assert notice.contact.period == "2025年10月16日至11月16日"


def test_e_mail_words_inside_an_item_do_not_end_the_notice(notice):
    # Item 21 mentions 政务电子邮箱; that is not the contact paragraph.
    assert notice.item(21).text.endswith("工作中使用党政机关政务电子邮箱。")
    assert notice.item(22) is not None


def test_library_loads_metadata():
    library = load_library()
    meta = library.meta["qingyuan-wlj-xuncha-2025"]
    assert meta.title == "关于八届市委第五轮巡察整改进展情况的通报"
    assert meta.issuer == "中共清远市文化广电旅游体育局党组"
    assert (meta.date, meta.period_start, meta.period_end) == ("2025-10-16", "2025-10-16", "2025-11-16")


def test_aliases_are_loaded_per_anchor_and_shared_by_split_pieces():
    library = load_library()
    meta = library.meta["qingyuan-wlj-xuncha-2025"]
    notice = library.notices["qingyuan-wlj-xuncha-2025"]
    anchors = {node.anchor for node in notice.walk()}
    assert set(meta.aliases) <= anchors
    assert {f"item-{n}" for n in range(1, 29)} <= set(meta.aliases)
    assert "家底" in meta.aliases["item-2"]
    assert meta.aliases_for("item-4-p2") == meta.aliases["item-4"]
    assert meta.aliases_for("item-99") == ()


def _small_notice_with(folder, extra_metadata: str) -> None:
    """The small test notice copied into ``folder``, with ``extra_metadata`` added to its .yml."""
    for suffix in (".txt", ".yml"):
        shutil.copy(DATA / f"notice_small{suffix}", folder / f"notice_small{suffix}")
    meta = folder / "notice_small.yml"
    meta.write_text(meta.read_text(encoding="utf-8") + extra_metadata, encoding="utf-8")


@pytest.mark.parametrize(
    "aliases, message",
    [("  item-99: [某词]\n", "item-99"), ("  item-1: 会议\n  item-98: [x]\n", "item-98")],
)
def test_aliases_naming_a_missing_passage_are_refused(tmp_path, aliases, message):
    _small_notice_with(tmp_path, "aliases:\n" + aliases)
    with pytest.raises(NoticeParseError, match=message) as err:
        load_library(tmp_path)
    assert "不存在的段落" in str(err.value)


def test_labelled_questions_are_loaded_and_checked(tmp_path):
    _small_notice_with(tmp_path, "")
    labelled = tmp_path / "notice_small.questions.tsv"
    labelled.write_text("question\texpected\tkind\n防溺水怎么教\titem-7\tplain\n中考哪天报名\t-\toos\n",
                        encoding="utf-8")
    library = load_library(tmp_path)
    questions = library.questions[next(iter(library.meta))]
    assert [(q.question, q.expected, q.out_of_scope) for q in questions] == [
        ("防溺水怎么教", ["item-7"], False), ("中考哪天报名", [], True)]
    labelled.write_text("question\texpected\n怎么教\titem-77\n", encoding="utf-8")
    with pytest.raises(NoticeParseError, match="item-77") as err:
        load_library(tmp_path)
    assert "不存在的段落" in str(err.value)
    labelled.write_text("问题\t段落\n怎么教\titem-7\n", encoding="utf-8")
    with pytest.raises(NoticeParseError, match="格式有误"):
        load_library(tmp_path)
    # An empty answer column is a mistake, not "out of scope" (that is "-").
    labelled.write_text("question\texpected\n怎么教\t\tplain\n", encoding="utf-8")
    with pytest.raises(NoticeParseError, match=":2: no expected passage"):
        load_library(tmp_path)


def test_labelled_questions_saved_by_a_spreadsheet_keep_their_text(tmp_path):
    """A BOM before the header and ASCII quotes inside a question are the question's, not CSV's."""
    _small_notice_with(tmp_path, "")
    (tmp_path / "notice_small.questions.tsv").write_text(
        "\ufeffquestion\texpected\tkind\n\"明厨亮灶\"是什么\titem-6\tplain\n说\"一生一档\t item-4\tplain\n",
        encoding="utf-8")
    library = load_library(tmp_path)
    questions = library.questions[next(iter(library.meta))]
    assert [(q.question, q.expected) for q in questions] == [
        ("\"明厨亮灶\"是什么", ["item-6"]), ("说\"一生一档", ["item-4"])]


def test_aliases_that_are_not_a_mapping_are_refused(tmp_path):
    _small_notice_with(tmp_path, "aliases: [会议, 学习]\n")
    with pytest.raises(NoticeParseError, match="aliases"):
        load_library(tmp_path)


@pytest.mark.parametrize("text", ["", "   \n", "一则新闻。没有任何编号结构。\n\n记者 张三", "一、只有一个部分\n\n正文。"])
def test_rejects_what_it_cannot_parse(text):
    with pytest.raises(NoticeParseError) as err:
        parse_notice(text, "bad")
    assert "无法" in str(err.value) or "空" in str(err.value)


def test_rejects_parts_without_items_or_points():
    text = "标题\n\n前言一段。\n\n一、第一部分\n\n正文。\n\n二、第二部分\n\n正文。\n"
    with pytest.raises(NoticeParseError, match="编号条目"):
        parse_notice(text, "flat")


@pytest.mark.parametrize("numeral, value", [("一", 1), ("十", 10), ("十六", 16), ("二十", 20), ("二十八", 28)])
def test_chinese_numerals(numeral, value):
    assert cn_to_int(numeral) == value
    assert int_to_cn(value) == numeral


# ---- a second notice: heading and text on one line, 5． full-width dot, （二) mixed parens -------


@pytest.fixture(scope="module")
def small():
    return parse_notice((DATA / "notice_small.txt").read_text(encoding="utf-8"), "notice_small")


def test_small_notice_structure(small):
    assert [t.heading for t in small.topics()] == [
        "关于落实立德树人根本任务方面",
        "关于保障教育公平方面",
        "关于守牢校园安全底线方面",
        "关于加强干部教师队伍作风建设方面",
    ]
    assert [i.number for i in small.items()] == [str(i) for i in range(1, 10)]
    assert [a.anchor for a in small.walk() if a.kind in ("part", "section")] == [
        "part-1", "part-2", "part-3", "section-1", "section-2",
    ]
    for node in small.walk():
        assert node.text == small.text[node.start : node.end]


@pytest.mark.parametrize(
    "number, heading, points, first_point",
    [
        (1, "加强学校思政课建设", 4, "一是配齐配强思政课教师"),  # heading and points on one line
        (4, "关心关爱农村留守儿童", 3, "一是建立留守儿童信息台账"),
        (5, "规范学校收费管理", 3, "一是"),  # 5． with a full-width dot
        (8, "整治在职教师有偿补课问题", 3, "一是"),  # right after its topic, no blank line
    ],
)
def test_small_notice_items(small, number, heading, points, first_point):
    item = small.item(number)
    assert item.heading == heading
    assert len(item.children) == points
    assert item.children[0].text.startswith(first_point)
    assert heading not in item.children[0].text


def test_small_notice_topic_with_mixed_parentheses(small):
    assert small.item(3).path == "二、（二）第3条"


def test_small_notice_contact_stops_at_commas(small):
    assert small.contact.phone == "0755-26581234"
    assert small.contact.address == "青禾县城关镇文昌路18号县教育局四楼"
    assert small.contact.postcode == "518999"


def test_news_article_is_rejected():
    with pytest.raises(NoticeParseError):
        parse_notice((DATA / "notice_bad.txt").read_text(encoding="utf-8"), "notice_bad")


def test_the_issuers_area_is_loaded_and_checked(tmp_path):
    meta = load_library().meta["qingyuan-wlj-xuncha-2025"]
    assert {"阳山县", "连南", "英德市"} <= set(meta.area)  # 阳山县 is nowhere in the notice's text
    _small_notice_with(tmp_path, "area: 某县\n")
    with pytest.raises(NoticeParseError, match="area"):
        load_library(tmp_path)
