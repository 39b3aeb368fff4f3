"""Extractive answers: cited, quoted from the notice, numbers kept, abstaining when it must."""

import re

import pytest

from bot.turns import Context

from bot.itemref import parse_item_number

pytestmark = pytest.mark.slow


def _notice_text(answerer):
    notice, _ = answerer.notice_for()
    return notice.text


@pytest.mark.parametrize(
    "question, anchor, must_quote",
    [
        ("应急广播建设进展如何", "item-16", "市级应急广播系统已完成建设并投入使用"),
        ("旅游景区的安全谁来管", "item-18", ""),
        ("党员干部的廉洁教育做了什么", "item-22", "警示教育"),
    ],
)
def test_answers_cite_the_item_and_quote_it(answerer, question, anchor, must_quote):
    answer = answerer.answer(question)
    assert not answer.abstained
    first = answer.citations[0]
    assert first.anchor == anchor
    assert answer.text.startswith(f"根据《关于八届市委第五轮巡察整改进展情况的通报》第{first.number}条“{first.heading}”：")
    assert must_quote in first.quote
    text = _notice_text(answerer)
    for piece in first.quote.split("……"):
        assert piece in text  # extractive: every sentence shown is the notice's own
    assert first.passage in text
    assert 1 <= len(answer.citations) <= 3


@pytest.mark.parametrize(
    "question, anchor, number",
    [
        ("入库级的文化和旅游特色镇有几个", "item-5", "11个乡镇"),
        ("旅游厕所建了多少座", "item-4", "368座"),
        ("全市有多少条旅游公交线路", "item-4", "59条"),
        ("多少名直属单位干部完成了岗位晋升", "item-27", "31名"),
        ("基层受测人员比例达到多少", "item-14", "50%"),
        ("市图书馆和博物馆新馆什么时候局部开放", "item-10", "2025年8月"),
        ("巡察是哪天开始的", "preamble", "2024年3月29日"),
    ],
)
def test_numeric_answers_hold_their_number(answerer, question, anchor, number):
    answer = answerer.answer(question)
    assert not answer.abstained
    assert answer.citations[0].anchor == anchor
    assert number in answer.citations[0].quote
    assert number in answer.text


@pytest.mark.parametrize(
    "question",
    ["明天清远天气怎么样", "身份证丢了怎么补办", "最近买哪只股票能赚钱", "帮我写一首关于秋天的诗",
     "<img src=x onerror=alert(1)>", "asdfghjkl", "？？？"],
)
def test_abstains_with_contact_and_three_suggestions(answerer, question):
    answer = answerer.answer(question)
    assert answer.abstained
    assert answer.citations == []
    assert "0763-3375826" in answer.text and "qywgltj@gdqy.gov.cn" in answer.text
    assert len(answer.suggestions) == 3


@pytest.mark.parametrize("question", ["佛山市文广旅体局的整改做得怎么样", "肇庆市博物馆最近有什么展览"])
def test_questions_about_another_city_or_office_are_declined(answerer, question):
    answer = answerer.answer(question)
    assert answer.abstained
    assert answer.debug["features"]["foreign_names"] >= 1


def test_an_ordinal_the_notice_never_names_counts_against_scope(answerer):
    answer = answerer.answer("八届市委第七轮巡察什么时候开始")
    assert answer.debug["features"]["foreign_ordinals"] == 1
    assert answerer.answer("八届市委第五轮巡察是什么时候").debug["features"]["foreign_ordinals"] == 0


def test_a_place_the_notice_names_is_not_foreign(answerer):
    answer = answerer.answer("连州市入选了什么试点")
    assert not answer.abstained and answer.citations[0].anchor == "item-5"
    assert answer.debug["features"]["foreign_names"] == 0


def test_the_issuers_own_area_and_short_name_are_not_foreign(answerer):
    answer = answerer.answer("市文旅体局在会风会纪上改了什么")  # a short name of the issuer
    assert answer.debug["features"]["foreign_names"] == 0
    assert not answer.abstained and answer.citations[0].anchor == "item-1"


def test_a_county_the_passage_does_not_name_is_not_answered_with_the_others(answerer):
    """阳山县 is the issuer's own (not another city), but 第16条 reports on other counties only."""
    answer = answerer.answer("阳山县的应急广播建起来了吗")
    assert answer.debug["features"]["foreign_names"] == 0
    assert answer.abstained and answer.kind == "not_covered" and answer.citations == []
    assert answer.text.startswith("《关于八届市委第五轮巡察整改进展情况的通报》第16条") and "没有单独说明阳山县" in answer.text
    assert answer.about == ("qingyuan-wlj-xuncha-2025", "item-16")


@pytest.mark.parametrize("question", ["第16条是什么", "第十六条", "16条讲的什么", "第１６条"])
def test_item_by_number_returns_the_whole_item(answerer, question):
    answer = answerer.answer(question)
    assert answer.kind == "item" and not answer.abstained
    assert answer.citations[0].anchor == "item-16"
    assert answer.text.startswith("《关于八届市委第五轮巡察整改进展情况的通报》第16条“大力推进应急广播系统建设”")
    assert "三是积极与省广播电视局沟通" in answer.text


def test_an_item_that_does_not_exist_says_so(answerer):
    answer = answerer.answer("第99条是什么")
    assert answer.kind == "item" and answer.citations == []
    assert "没有第99条" in answer.text and "第1条至第28条" in answer.text


def test_overview_lists_the_eleven_topics(answerer):
    answer = answerer.answer("整改了哪些方面")
    assert answer.kind == "overview"
    assert "从11个方面通报了28条整改任务" in answer.text
    assert len(re.findall(r"（[一二三四五六七八九十]+）", answer.text)) == 11
    assert "（四）推动体育和广播电视事业发展工作方面（第13—16条）" in answer.text


def test_contact_answer_quotes_the_closing_paragraph(answerer):
    answer = answerer.contact_answer("怎么反映意见")
    assert answer.citations[0].anchor == "contact"
    assert "邮政编码：511518" in answer.text


def test_empty_question_asks_for_one(answerer):
    answer = answerer.answer("   ")
    assert answer.kind == "empty" and not answer.abstained
    assert "请输入" in answer.text


def test_related_questions_follow_an_answer(answerer):
    answer = answerer.answer("应急广播建设进展如何")
    assert 2 <= len(answer.suggestions) <= 3
    # phrased as a citizen asks (no 第N条), each one answered by a neighbour of 第16条
    assert not any(parse_item_number(s) for s in answer.suggestions)
    cited = [answerer.answer(s).citations[0].anchor for s in answer.suggestions]
    assert set(cited) <= {"item-13", "item-14", "item-15", "item-17"} and len(set(cited)) == len(cited)


def test_every_items_suggested_question_cites_that_item(answerer):
    from bot.answer import _question_for

    notice, _ = answerer.notice_for()
    for item in notice.items():
        answer = answerer.answer(_question_for(item))
        assert [c.anchor for c in answer.citations][:1] == [item.anchor], _question_for(item)


@pytest.mark.parametrize(
    "first, follow_up, anchor, quote",
    [
        ("应急广播建设进展如何", "连南那边呢？", "item-16", "连南应急广播系统"),
        ("旅游厕所建了多少座", "集散中心呢？", "item-4", "旅游集散中心8个"),
        ("第二十三条", "那经费怎么用的？", "item-24", ""),
    ],
)
def test_follow_ups_resolve_against_the_last_topic(answerer, first, follow_up, anchor, quote):
    last = answerer.answer(first).citations[0]
    answer = answerer.answer(follow_up, Context(question=first, doc=last.doc, anchor=last.anchor))
    assert answer.citations[0].anchor == anchor
    assert quote in answer.citations[0].quote


def test_the_json_contract(answerer):
    data = answerer.answer("应急广播建设进展如何").to_dict()
    assert set(data) == {"question", "answer", "abstained", "citations"}
    assert set(data["citations"][0]) == {"doc", "notice", "number", "heading", "path", "anchor", "passage", "quote", "quotes", "score"}
    assert data["citations"][0]["path"] == "二、（四）第16条"
    assert data["citations"][0]["doc"] == "qingyuan-wlj-xuncha-2025"
    # the quoted sentences one by one, each whole and the notice's own, never "……"-joined
    text = answerer.library.notices["qingyuan-wlj-xuncha-2025"].text
    quotes = data["citations"][0]["quotes"]
    assert quotes and all(q in text and "……" not in q for q in quotes)


@pytest.mark.parametrize("text, number", [("第16条", 16), ("第十六条", 16), ("第二十三项", 23), ("看看第3条", 3),
                                          ("16条是什么", 16), ("应急广播", None), ("三审三校", None)])
def test_item_references(text, number):
    assert parse_item_number(text) == number


def test_every_welcome_suggestion_is_answered(answerer, bot):
    suggestions = answerer.welcome_suggestions()
    assert 4 <= len(suggestions) <= 6
    for i, question in enumerate(suggestions):
        message = bot.dialogue.handle(f"welcome-{i}", question)[0]
        assert not message["custom"]["abstained"], question
        assert message["custom"]["citations"] or message["custom"]["kind"] == "overview", question


def test_the_shipped_scope_weights_fit_the_default_engine(answerer, retriever):
    # Learnt with the tuning questions (train-scope), not relearnt from the NLU examples at start.
    answerer.warm_up()
    model = answerer.policy.model
    assert model.embedding_model == retriever.embedder.name
    assert model.trained_on["questions"] > 0


def test_debug_shows_the_nearest_labelled_question_of_each_passage(answerer):
    """Staff see why the labelled questions voted: the nearest one of each passage found (as the
    search reads it, normalised) and how close it is."""
    answer = answerer.answer("应急广播建设进展如何")
    from index.text import normalize

    labelled = {normalize(q.question) for qs in answerer.retriever.library.questions.values() for q in qs}
    top = answer.debug["hits"][0]
    assert top["anchor"] == "item-16" and top["labelled"]["question"] in labelled
    assert top["labelled"]["similarity"] == pytest.approx(top["scores"]["examples"], abs=1e-3)


def test_the_overview_offers_each_topic_and_a_topic_offers_its_items(answerer):
    overview = answerer.answer("整改了哪些方面")
    assert overview.kind == "overview"
    notice, _ = answerer.notice_for()
    topics = [t for t in notice.topics() if any(i.kind == "item" for i in t.children)]
    assert len(overview.suggestions) == len(topics) == 11
    for topic, button in zip(topics, overview.suggestions):
        picked = answerer.answer(button)
        assert picked.kind == "topic" and topic.heading in picked.text
        items = [i for i in topic.children if i.kind == "item"]
        assert len(picked.suggestions) == len(items)
        # each item's question cites that item
        for item, question in zip(items, picked.suggestions):
            assert answerer.answer(question).citations[0].anchor == item.anchor
