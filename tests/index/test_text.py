"""Text normalisation and the word views that indexing and querying share (no model needed)."""

import pytest

from index.text import asks, bigrams, names, normalize, words


@pytest.mark.parametrize(
    "text, expected",
    [
        ("巡察組甚麼時候反饋了意見？", "巡察组什么时候反馈了意见?"),  # 甚麼: t2s keeps 甚么, we fold it
        ("應急廣播建設進展如何", "应急广播建设进展如何"),
        ("第１６条　讲了什么", "第16条 讲了什么"),
        ("  多个   空格 ", "多个 空格"),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_words_drop_stop_words_and_punctuation():
    found = words("请问应急广播建设进展如何？")  # 应急广播 may be one word once the index taught jieba
    assert "".join(found) == "应急广播建设"
    assert "的" not in words("旅游景区的安全")


def test_bigrams_cover_runs_of_chinese():
    assert bigrams("应急广播") == ["应急", "急广", "广播"]
    assert bigrams("A级 景区") == ["a", "级", "景区"]  # a lone character stands for itself


@pytest.mark.parametrize(
    "text, expected",
    [
        ("韶关市文化广电旅游局的整改情况", {"韶关市"}),
        ("清远市教育局的通报在哪看", {"清远市", "教育局"}),
        ("应急广播建设进展如何", set()),
        ("旅游厕所建了多少座", set()),
    ],
)
def test_names_find_places_and_bodies(text, expected):
    assert expected <= set(names(text))
    if not expected:
        assert names(text) == []


def test_a_long_message_is_read_as_its_asking_sentences():
    from index.text import READ_CHARS, condense

    story = "我是连南县的村民。" + "我们村里去年装了喇叭，平时也听广播。" * 20 + "请问连南的应急广播建好了吗？谢谢。"
    read = condense(story)
    assert len(read) <= READ_CHARS and "请问连南的应急广播建好了吗？" in read and read.startswith("我是连南县的村民。")
    assert condense("应" * 500) == "应应应" and condense("哈哈哈哈哈哈你好") == "哈哈哈你好"
    assert condense("10000元是多少") == "10000元是多少"  # digits are never cut
    question = "应急广播建设进展如何？"
    assert condense(question) == question  # a question is read whole
    no_ask = "甲" * 30 + "乙" * 30 + "丙丁" * 40
    assert condense(no_ask) == no_ask[-READ_CHARS:]


@pytest.mark.parametrize(
    "text, asking",
    [("应急广播建好了吗", True), ("整改了什么", True), ("有没有建台账", True),
     # question words as indefinites, and 没几 ("few"): statements
     ("什么都没变", False), ("啥也不管", False), ("谁都知道", False), ("没几个人来", False), ("没多少钱", False),
     # a negation closing a clause after a verb asks; after an adverb it does not
     ("收费公开不", True), ("账目核对过没有", True), ("制度有规定没", True), ("还没有", False), ("说了半年都没", False),
     ("是上午的还是下午的", True), ("还是没改", False),
     ("网站点样用", True), ("有冇人管", True), ("边个负责", True)],
)
def test_what_asks_and_what_only_states(text, asking):
    assert asks(text) is asking
