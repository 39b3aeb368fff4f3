"""Does the notice answer this question? A small logistic model over retrieval signals.

A similarity threshold alone cannot separate in- from out-of-scope questions: their top cosines
overlap (bench/RESULTS.md). Several weak signals together can:

- ``service`` / ``service_ask``: the question (``service_ask``: its last clause, where a Chinese
  question puts its ask) asks for a personal service (多少钱, 几点, 怎么买…, and the services of the
  library's fields: 办理, 门票, 挂号, from knowledge/fields/) that the passage found does not itself
  speak of — a progress notice on rectification never answers those;
- ``max_unknown_idf``: how specific the most specific word is that the notice never uses;
- ``foreign_names``: places and bodies the question names and the notice never does (韶关市,
  教育局), other than the issuer's own area (阳山县) and short forms of the issuer's name (文广局):
  a question about another city or office is not about this notice;
- ``foreign_ordinals``: rounds, sessions or years the notice never names (第六轮巡察, 2023年), read
  as the notice writes them (第5轮 is its 第五轮);
- ``sentence`` / ``dense``: the best sentence and passage cosine;
- ``coverage`` / ``idf_coverage``: the share of the question's words (plain and IDF-weighted)
  that the notice or the synonym list knows; ``unknown``: how many it does not;
- ``type_unmet``: the ask wants a kind of fact — a phone number, an e-mail or postal address, a
  place, which village or firm (or which of a field's kinds of place and office), a date or duration, a share, a sum of money, a count (几枚, 多少人,
  多少游客) or a figure (收入是多少) — and the passage found states none of that kind (a place, a
  count or a sum must stand in a sentence about the subject; a village or firm must be named, not
  only counted): the notice talks about the subject but not about what is asked (省里给了多少钱,
  什么时候建成开放, 入选的是哪个村);
- ``asks_name``: the question asks who someone is by name (局长叫什么名字), which a rectification
  notice does not say;
- ``labelled_declined``: staff labelled a question this close (cosine ≥ 0.97) as one the notice
  does not answer, and none as close as one it does;
- ``about_now``: the question is about the asker's today, yesterday or last week (今天图书馆人多不多),
  of which a dated progress report says nothing;
- ``passage_coverage``: the IDF-weighted share of the question's words that the passage found
  uses (text, heading, aliases): a near miss names the subject and then something else
  (多少名干部受到了处分 finds 第27条's 31名干部, and 处分 is nowhere in it);
- ``oos_margin``: how much nearer the question is to the Rasa NLU ``out_of_scope`` examples than
  to the ``ask_notice`` ones (the same k-NN the dialogue uses);
- ``labelled_margin``: the same over the notice's labelled questions: how much nearer the
  question is to the nearest one the notice does not answer than to the nearest it does (清远有几个
  5A级景区 was asked, and labelled, before);
- ``bm25`` / ``bigram``: the lexical rankers' top scores (log).

``type_unmet``, ``service_ask``, ``asks_name``, ``foreign_names``, ``foreign_ordinals``,
``about_now`` and ``labelled_declined`` decide alone (:data:`DECISIVE`); the others are weighed. The weights are learnt (``python -m bot
train-scope``) from the NLU examples and the notice's labelled questions, and stored in
``bot/data/scope_model.json``, one entry per embedding model (and engine) they were learnt under.
Under a model with no entry they are relearnt from the NLU examples at start-up.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.text import PLACE_SUFFIX_RE, names, pos_tag, words
from knowledge.fields import FieldVocabulary, field_vocabulary

log = logging.getLogger(__name__)

MODEL_FILE = Path(__file__).resolve().parent / "data" / "scope_model.json"
FEATURES = ("service", "service_ask", "max_unknown_idf", "foreign_names", "foreign_ordinals", "type_unmet",
            "asks_name", "about_now", "labelled_declined", "sentence", "dense", "coverage", "idf_coverage", "passage_coverage", "unknown",
            "oos_margin", "labelled_margin", "bm25", "bigram")
FEATURES_VERSION = 11
_LABELLED_COLUMN = FEATURES.index("labelled_margin")
# A question this close to one staff labelled 通报未涉及 (and nearer it than to any they labelled
# answered) is declined: that is what the label was for.
LABEL_DECIDES = 0.97
REGULARISATION_C = 1.0

# How a question asks for a personal service, in any field: a price (多少钱, 要不要钱), where or how
# to buy, what papers to bring, the time of day, a procedure (怎么办营业执照, not 出了岔子怎么办(呢),
# which asks what is done about it), how to pay, sit an exam, get a refund or get there, which bus.
# (收发工作材料 is not 要带什么材料.) What the services are (门票, 挂号, 身份证) is each field's, in
# knowledge/fields/ (:func:`scope_vocabulary`).
_SERVICE_ASK = (r"多少钱|要不要钱|要钱|(?:怎么|哪里|在哪|去哪)买|要带什么|(?:什么|哪些|需要|要带|准备)\S{0,3}材料|几点|"
                r"怎么办(?![呢呀啊吧嘛哇的了啦才好])(?=[\u4e00-\u9fff])|怎么(?:交|考|退|去|走)|(?:坐|乘|搭)几路")


_NUMERAL = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)"
_MEASURES = "个座条家名项次人元块钱枚所处批场届期套台件本位户天周起年篇份张辆栋间"
# A count asked for: 几枚, 多少人, 多少游客 (a bare 多少 before what is counted, not 多少钱).
# 那几个体育馆, 多几个剧场 and 哪几个镇 do not ask how many; 第几批 asks which one.
_ASK_COUNT_RE = re.compile(rf"(?:多少|(?<![那这多好十哪第])几)([{_MEASURES}])|多少(?=[\u4e00-\u9fff]{{2}})(?![钱])")
# A quantity the passage states: a number and a measure word (8个, 368座, 11个乡镇), not an
# ordinal (一是, 第四次), a year or a span of time (2024年, 七天), nor a number inside a document's
# title (《…五年行动计划》) or a quoted slogan (“两个维护”).
_QUANTITY_RE = re.compile(r"(?<![第\d一二两三四五六七八九十百千])(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)(?!是)"
                          r"(?<!\d{4})\s*多?\s*[万亿]?\s*[个座条家名项人元块枚所处批场套台件本位户起万亿支队部栋间次]")
_YEARS_RE = re.compile(r"(?<!\d)(?:\d{1,3}|[一二两三四五六七八九十百千]+)\s*多?\s*年(?!度)")
_TITLE_RE = re.compile(r"《[^》]*》")
_QUOTED_RE = re.compile(r"“[^”]*”")
_DIGIT_RE = re.compile(r"\d")
# Ordinals and years (第六轮, 2023年): a question naming one the notice never does is about
# another round, batch or year.
_ORDINAL_RE = re.compile(r"第([一二三四五六七八九十\d]+)([轮批届次期]|巡察组)|((?:19|20)\d\d)年")
_ORDINAL_STATED_RE = re.compile(r"第[一二三四五六七八九十\d]+")
# Another round named relatively (上一轮, 下一次巡察, 上次): the notice reports on its own round.
# Other bodies named relatively (其他单位, 别的部门, 其他局): the notice reports on its issuer alone.
_RELATIVE_ROUND_RE = re.compile(r"[上下]一?[轮届批]|(?:其他|别的|另外的?)(?:巡察组|巡视组|单位|部门|局)|"
                                r"(?:[上下]一?次|前几[轮次]|以前那?[轮次])(?=\S{0,3}(?:巡察|巡视|检查|整改))")
_MONEY_NOUNS = r"钱|资金|经费|费用|预算|投资|投入|金额|补助|补贴|奖金|奖励|拨款"
_ASK_MONEY_RE = re.compile(rf"(?:多少|几)(?:{_MONEY_NOUNS}|[万亿](?:元|块|$|(?=[？?，,。])))|花了多少|投入了?多少|"
                           rf"(?:{_MONEY_NOUNS})(?:是|有|为|要|大概|一共|总共|共)*多少")
# A share asked for (占比达到多少, 多大比例), not a share talked about (缴纳比例依据哪份规定).
# Where something comes from (钱从哪里来, 资金来源, 经费哪来的; Cantonese 边度嚟): answered only by a
# passage that speaks of it.
_ASK_SOURCE_RE = re.compile(r"从(?:哪|边度)|(?:哪|边度)(?:里|儿)?(?:来|嚟|出)|来源|出处|谁(?:出|给|拨|掏)")
_ASK_SHARE_RE = re.compile(r"百分之(?:几|多少)|几成|(?:比例|比率|占比|百分比)\S{0,6}?(?:多少|几)|(?:多大|多少|什么)(?:比例|比率)")
# When, or how long (多少天, 几个月: the preamble's 3月29日至6月28日 answers that).
_ASK_DATE_RE = re.compile(r"什么时候|啥时候?|几时|何时|哪天|哪一?年|哪几年|几月|几号|多久|哪个月|多长时间|"
                          r"(?:多少|(?<![那这多好十哪])几)个?(?:天|周|星期|月|小时)")
_DATE_RE = re.compile(r"(?:\d+|[一二三四五六七八九十两]+)\s*(?:天|周|个月|小时)|\d{4}\s*[-—–至到]\s*\d{4}|\d{4}\s*年|\d{1,2}\s*月|\d{1,2}\s*日|年度|[一二三四五六七八九十]+月")
_SHARE_RE = re.compile(r"%|％|百分之|成以上")
# Asking for the thing itself (电话是多少, 打什么电话), not talking about it (用私人邮箱).
_ASK_PHONE_RE = re.compile(r"(?:电话|热线|号码|手机号?)(?:号码)?(?:是|为)?(?:多少|几号|什么)|[找打拨](?:什么|哪个|哪)\S{0,2}电话")
_PHONE_RE = re.compile(r"\d{3,4}-\d{7,8}|\d{7,}")
# A web address, a QR code or an account name to follow: answered only by a passage that gives one.
_ASK_WEB_RE = re.compile(r"网址|网站(?:是|地址|叫)|(?:网页|页面)链接|链接(?:是|发|给)|二维码|(?:公众号|小程序|app|APP)(?:叫|是|名字)")
_WEB_RE = re.compile(r"https?://|www\.|\.(?:cn|com|net|org)\b|[“\"「][^”\"」]{2,12}[”\"」](?:微信)?(?:公众号|小程序|APP|app)")
_ASK_EMAIL_RE = re.compile(r"(?:邮箱|电邮|e-?mail)(?:地址)?(?:是|为)?(?:多少|什么|啥)", re.I)
_ASK_ADDRESS_RE = re.compile(r"地址|在哪办公|门牌")
_ASK_FREQUENCY_RE = re.compile(r"(?:多久|多长时间|隔多久|几天|几个月)\S{0,6}一[次回趟]|多频繁|多经常")
_FREQUENCY_RE = re.compile(r"定期|每[年季月周天日]|常态化|经常|一年\S{0,2}次|每次")
_ASKS_HOW_RE = re.compile(r"(?:多少|几)\S*(?:怎么|如何|咋|按什么|依据什么|凭什么)")
_YES_NO_RE = re.compile(r"有没有|是否|有无|是不是|有未")
_SENTENCE_RE = re.compile(r"[。；;]")
# Today, yesterday, last week: a dated progress report does not speak of the asker's now (38 of
# the 38 labelled questions naming such a day are out of scope).
_NOW_RE = re.compile(r"今天|明天|昨天|今晚|昨晚|明晚|今早|后天|前天|上个?星期|上礼拜|上周|这周|下周|刚才|刚刚")
_POLITE_RE = re.compile(r"(?:谢谢|多谢|感谢|谢啦|麻烦了|麻烦你了|拜托了?|好吗|好不好|可以吗|请问|您好|你好)[啊呀哈了您你]*")
_CLAUSE_RE = re.compile(r"[，,；;。？?！!]")
# Where something is (在哪里, 在哪能查到, 在哪个镇, 什么地方), not where money went (花在哪, 用在哪),
# when (在哪天, 在哪段时间) nor within what (在哪个监管体系中, 在哪项工作中). A field's kinds of place
# (在哪个场馆) join the language's (:func:`scope_vocabulary`).
_ASK_PLACE = (r"(?<![花用])在哪(?:里|儿|能|可以|可|去|办|查|看|找|买|报|$|(?=[？?吗呀啊呢]))|"
              r"在哪(?:个|些|条)(?:地方|位置|区|县|镇|村|城市|街道|乡镇|路|街|马路{places})|"
              r"什么地方|哪些地方|哪个地方|哪几个地方|哪几处|什么位置|地点|分布在")
# Which place or organisation (哪个村, 哪家企业, 哪几个景区): the passage must name one of that kind
# (佛冈县汤塘镇, 广东省文物考古研究院), not only count them (全国乡村旅游重点村1个). The kinds are the
# language's places (村, 镇, 县, 区) and the field's places and offices.
# (哪个单位负责 is not one: 局党组 and its 领导小组 answer it.)
_ASK_WHICH = r"哪(?:几|一|些)?[个家座所条位]?({kinds})|哪(?:几|一|些)(家)"
_PLACES = ("村", "镇", "县", "区")
# "Which ones" of any other kind (是哪一个, 哪几个单位, 分别是哪些): the kind is the noun after
# 哪…, or else the ask's subject; not a time (哪年, 哪天), which the date asks read.
_ASK_WHICH_ANY_RE = re.compile(r"哪(?:几|一|些)?+(?:个|家|座|所|条|位|项|批|种|类)?+(?![年月天日时里儿])")
_OFFICE_RE = re.compile(r"[局厅委办]$")
# How the name of an office or body ends (…局, …研究院, …博物馆, …集团), besides the field's kinds
# of organisation (…酒店, …医院).
_ORGANISATION_ENDS = ("局", "厅", "委", "办", "院", "馆", "公司", "集团", "中心", "学校", "学院", "大学", "企业", "厂")
_ADDRESS_RE = re.compile(r"[路街道]\S{0,8}(?:号|楼|大厦|大楼)|地址")
# A person's name: 叫什么名字, or 叫什么 after a title (局长叫什么), not a mechanism's (那个机制叫什么).
_ASKS_NAME_RE = re.compile(r"(?:长|书记|主任|领导|负责人|干部)叫(?:什么|啥)|叫(?:什么|啥)名字|名字叫(?:什么|啥)|姓名|(?:是|都有)谁[?？吗呀啊]*$|哪[几一些]?位|"
                           r"(?:都是|是|有)哪些人[?？呀啊呢]*$|"
                           r"(?<!什么)(?<!哪个)(?<!哪份)名单|有哪些成员|哪(?:个|几个|几位|位|些)(?:干部|党员|同志|职工)|(?:分别|都)叫什么")
# Measure words only their own kind answers (多少人 by 31名, 多少钱 by 元); any other count (多少个,
# 几家, 几座) is answered by any quantity (368座, 8个).
_SAME_MEASURE = {"人": "[人名位]", "名": "[人名位]", "位": "[人名位]",
                 "元": "元", "块": "元", "钱": "元"}


@dataclass(frozen=True)
class ScopeVocabulary:
    """A library's field vocabularies (knowledge/fields/) compiled into the patterns the signals read."""

    # a personal service asked for: the language's asks (多少钱, 怎么买) and the fields' services (门票, 挂号)
    service: re.Pattern
    # where something is: 在哪里, 在哪个镇, and a field's kinds of place (在哪个场馆)
    ask_place: re.Pattern
    # which place or organisation: 哪个村, 哪几个景区, 哪家医院
    ask_which: re.Pattern
    # the kinds of organisation (哪家酒店 is answered by a named one: …酒店, …公司)
    organisations: frozenset
    # how an organisation's name ends (…局, …研究院, and each kind of organisation)
    organisation_name: re.Pattern


def _alternatives(words) -> str:
    """Words as regex alternatives, the longest first (景区 before 区)."""
    return "|".join(re.escape(w) for w in sorted(dict.fromkeys(words), key=lambda w: (-len(w), w)))


@functools.lru_cache(maxsize=16)
def scope_vocabulary(fields: FieldVocabulary | None = None) -> ScopeVocabulary:
    """The patterns of ``fields`` (a library's :attr:`knowledge.store.Library.fields`), compiled once
    for each vocabulary; ``None``: the common vocabulary only (knowledge/fields/common.yml)."""
    if fields is None:
        fields = field_vocabulary([])
    places = tuple(p for p in fields.places if p not in _PLACES)
    organisations = tuple(fields.offices)
    return ScopeVocabulary(
        service=re.compile(f"({_SERVICE_ASK}" + (f"|{_alternatives(fields.services)}" if fields.services else "") + ")"),
        ask_place=re.compile(_ASK_PLACE.replace("{places}", "".join(f"|{re.escape(p)}" for p in places))),
        ask_which=re.compile(_ASK_WHICH.replace("{kinds}", _alternatives(_PLACES + places + organisations))),
        organisations=frozenset(organisations + ("家",)),
        organisation_name=re.compile(f"(?:{_alternatives(_ORGANISATION_ENDS + organisations)})$"),
    )


def vocabulary_of(retriever) -> ScopeVocabulary:
    """The compiled vocabulary of the notices ``retriever`` searches (their fields, merged)."""
    library = getattr(retriever, "library", None)
    return scope_vocabulary(getattr(library, "fields", None))


@functools.lru_cache(maxsize=4096)
def _sentence_names(sentence: str) -> tuple[str, ...]:
    """The place and body names in a sentence (tagged once: the passages' are tagged at warm-up)."""
    return tuple(names(sentence))


def _places(sentence: str) -> bool:
    """Whether a sentence names a place (清新区太和镇, 英德青塘镇), not only an office."""
    return any(PLACE_SUFFIX_RE.search(n) for n in _sentence_names(sentence))


def _passage_names(passage: str) -> tuple[str, ...]:
    """The place and body names in a passage's sentences."""
    return tuple(n for sentence in _sentences(passage) for n in _sentence_names(sentence))


def _names_one(passage: str, kind: str, area: tuple[str, ...], vocabulary: ScopeVocabulary) -> bool:
    """Whether ``passage`` names a place or organisation of ``kind`` (村, 景区, 企业…)."""
    found = _passage_names(passage)
    organisation = kind in vocabulary.organisations
    if organisation and any(vocabulary.organisation_name.search(n) for n in found):
        return True
    if kind == "家":  # 哪家, of no kind named: only a name ending like an organisation's answers it
        return False
    ours = [place for place in area if place in passage]
    if not organisation and kind in "县区市" and ours:  # 清城, 连山 name a 县 or 区
        return True
    # 汤塘镇 after its county (佛冈县汤塘镇), not any word after 全市 (全市旅游景区); an organisation
    # named by its place, where jieba tags only the place (东坪县人民医院); or a name jieba keeps
    # whole (连樟村)
    places = [n for n in found if PLACE_SUFFIX_RE.search(n)] + ours
    after_place = places and re.search(
        "(?:" + "|".join(map(re.escape, places)) + rf")[\u4e00-\u9fff]{{0,4}}{kind}", passage)
    return bool(after_place) or any(n.endswith(kind) and len(n) > len(kind) for n in found)


def _sentences(passage: str) -> list[str]:
    """The passage's sentences, document titles taken out: 《清远市…五年行动计划》 names a plan,
    it neither counts nor places anything."""
    return [s for s in _SENTENCE_RE.split(_TITLE_RE.sub("", passage)) if s.strip()]


def _service(text: str, passage: str, subject: tuple[str, ...] = (), heading: str = "",
             vocabulary: ScopeVocabulary | None = None) -> bool:
    """A personal-service cue in ``text`` that the passage found does not speak of itself: 预约
    in 做好预约团体讲解服务 is that passage's subject when the question is about 讲解, but 申请 in
    申请因私出国 says nothing about 学位怎么申请. A cue the passage's heading names (挂号难 in the
    problem an item rectifies) is what the passage is about.

    :param vocabulary: the library's fields (:func:`scope_vocabulary`); default: the common one.
    """
    for match in (vocabulary or scope_vocabulary()).service.finditer(text):
        cue = match.group()
        if cue in heading:
            continue
        if _ASK_MONEY_RE.search(cue) and _counted(passage, "元", subject):
            continue  # a cue that asks for a sum (多少钱) is met by one the passage states (189.6万元)
        others = tuple(rest for rest in (w.replace(cue, "") for w in subject) if len(rest) >= 2)
        if not any(cue in sentence and (not others or _mentions(sentence, others))
                   for sentence in _SENTENCE_RE.split(passage)):
            return True
    return False


def _mentions(sentence: str, subject: tuple[str, ...]) -> bool:
    """Whether ``sentence`` holds one of the words, or a two-character piece of one."""
    return any(w in sentence or any(w[i:i + 2] in sentence for i in range(len(w) - 1)) for w in subject)


def ask_subject(ask: str, synonyms: dict) -> tuple[str, ...]:
    """The ask's content words of two characters or more, with their synonyms (公厕 → 旅游厕所)."""
    found = [w for w in words(ask) if len(w) >= 2 and not re.search(r"\d", w)]
    return tuple(dict.fromkeys(found + [v for w in found for v in synonyms.get(w, ())]))


def main_clause(question: str) -> str:
    """The clause that carries the ask: Chinese puts it last ("图书馆关门又早，有没有改进？")."""
    clauses = [c.strip() for c in _CLAUSE_RE.split(question) if c.strip()]
    while len(clauses) > 1 and _POLITE_RE.fullmatch(clauses[-1]):  # "…，谢谢" / "…，好吗"
        clauses.pop()
    return clauses[-1] if clauses else question


def asks_name(ask: str) -> bool:
    """Whether the ask wants people by name (局长叫什么名字, 都是哪些人): a notice does not say."""
    return bool(_ASKS_NAME_RE.search(ask))


def type_unmet(question: str, passage: str, subject: tuple[str, ...] = (), area: tuple[str, ...] = (),
               vocabulary: ScopeVocabulary | None = None) -> bool:
    """Whether ``question`` asks for a kind of fact (a phone number, an e-mail address, a place,
    which village or firm, how often, a date, an ordinal, a share, money, a count or a figure) that
    ``passage`` does not state.

    :param subject: the question's own words (synonyms expanded): a count or sum must stand in a
        sentence that shares one of them (31名 counts 干部 promoted, not 人才 recruited).
    :param area: the places of the issuer's area (连南, 清城): names of places without a suffix.
    :param vocabulary: the library's fields, whose kinds of place and office a which-ask names
        (:func:`scope_vocabulary`); default: the common one.
    """
    vocabulary = vocabulary or scope_vocabulary()
    if _ASK_PHONE_RE.search(question):
        return not _PHONE_RE.search(passage)
    if _ASK_EMAIL_RE.search(question):
        return "@" not in passage
    if _ASK_WEB_RE.search(question):
        return not _WEB_RE.search(passage)
    if _YES_NO_RE.search(question):
        return False  # 有没有写清楚什么时候做完: asks whether, not when
    if _ASK_ADDRESS_RE.search(question):
        return not _ADDRESS_RE.search(passage)
    if vocabulary.ask_place.search(question):  # an address, or a place in a sentence about the subject
        in_area = lambda sentence: any(place in sentence for place in area)  # noqa: E731
        return not (_ADDRESS_RE.search(passage) or _stated(passage, lambda x: _places(x) or in_area(x), subject))
    which = vocabulary.ask_which.search(question)
    if which:
        kind = which.group(1) or which.group(2)
        return not _names_one(passage, kind, area, vocabulary)
    which_any = _ASK_WHICH_ANY_RE.search(question)
    if which_any and _counted_not_named(passage, _which_kinds(question[which_any.end():], subject)):
        return True  # 是哪一个 of 国家体育旅游示范基地1个: the passage counts them, it names none
    if _ASK_SOURCE_RE.search(question) and re.search(_MONEY_NOUNS, question):
        # 钱从哪里来: where the money comes from, in a sentence about money (争取到…建设资金)
        return not re.search(_MONEY_NOUNS, passage)
    if _ASK_FREQUENCY_RE.search(question):  # 多久研究一次: 定期 answers how often
        return not (_FREQUENCY_RE.search(passage) or _DATE_RE.search(passage))
    if _ASK_DATE_RE.search(question):
        return not _DATE_RE.search(passage)
    if "第几" in question:  # 第几批: an ordinal (第二批)
        return not _ORDINAL_STATED_RE.search(passage)
    if _ASK_SHARE_RE.search(question):
        return not _SHARE_RE.search(passage)
    if _ASKS_HOW_RE.search(question):  # 经费花多少是怎么定的: how the sum is set, not the sum
        return False
    if _ASK_MONEY_RE.search(question):
        return not _counted(passage, "元", subject)
    match = _ASK_COUNT_RE.search(question)
    if match:
        measure = match.group(1)
        if measure == "年":  # 距今多少年: a number of years (3000多年), not a year (2024年)
            return not _stated(passage, _YEARS_RE.search, subject)
        if measure not in _SAME_MEASURE:  # 多少个, 几家 are answered by 368座 and 8个 alike
            return not _stated(passage, _quantity, subject)
        return not _counted(passage, _SAME_MEASURE[measure], subject)
    if "多少" in question:  # 收入是多少, 上限是多少: a figure in a sentence about the subject
        return not _stated(passage, _DIGIT_RE.search, subject)
    return False


def _which_kinds(rest: str, subject: tuple[str, ...]) -> tuple[str, ...]:
    """What a which-ask asks about: the first word after 哪… (哪几个单位 → 单位), else the subject."""
    after = [w for w in words(rest) if len(w) >= 2]
    return (after[0],) if after else subject


_COUNT = r"(?<![第\d])\d+\s*[个座条家名项所处批位支部]"
# jieba's tags of what a 、 joins when it joins actions or qualities (解决、盘活; 配齐、配强), not names.
_ACTION_FLAGS = ("v", "vd", "vn", "a", "ad")


def _counted_not_named(passage: str, kinds: tuple[str, ...]) -> bool:
    """Whether the passage's sentences about ``kinds`` count them, the number next to the kind
    (6家单位, 9个直属事业单位, 示范基地1个), but name none: no quoted name (“百味鸡宴”美食之旅线路)
    and no list of things (:func:`_lists_things`)."""
    kinds = tuple(k for k in kinds if k)
    if not kinds:
        return False
    about = [s for s in _sentences(passage) if any(k in s for k in kinds)]
    counted = re.compile("|".join(rf"{_COUNT}[^，,。；、]{{0,8}}{re.escape(k)}|{re.escape(k)}\s*{_COUNT}" for k in kinds))
    return any(counted.search(s) for s in about) and not any(_QUOTED_RE.search(s) or _lists_things(s) for s in about)


def _lists_things(sentence: str) -> bool:
    """Whether a 、 in ``sentence`` lists things (清城区东城街道、清城区石角镇; “百味鸡宴”、“英石文化”),
    not actions or qualities (解决、盘活直属单位的聘岗问题; 配齐、配强): a list names what it lists."""
    for mark in re.finditer("、", sentence):
        before = pos_tag(sentence[max(0, mark.start() - 8):mark.start()])
        after = pos_tag(sentence[mark.end():mark.end() + 8])
        if not (before and after and before[-1].flag in _ACTION_FLAGS and after[0].flag in _ACTION_FLAGS):
            return True
    return False


def _quantity(sentence: str) -> bool:
    return bool(_QUANTITY_RE.search(_QUOTED_RE.sub("", sentence)))


def _counted(passage: str, measure: str, subject: tuple[str, ...]) -> bool:
    """Whether a sentence of ``passage`` holds a number with ``measure`` and speaks of ``subject``."""
    number = re.compile(_NUMERAL + r"\s*[万亿]?\s*" + measure)
    return _stated(passage, number.search, subject)


def _stated(passage: str, holds, subject: tuple[str, ...]) -> bool:
    """Whether a sentence of ``passage`` ``holds`` the fact and speaks of ``subject``."""
    return any(holds(sentence) and (not subject or _mentions(sentence, subject)) for sentence in _sentences(passage))


_CHINESE_DIGITS = "零一二三四五六七八九"


def _chinese_number(digits: str) -> str:
    """5 → 五, 20 → 二十, 24 → 二十四 (as the notice writes rounds and sessions)."""
    n = int(digits)
    if n < 10:
        return _CHINESE_DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _CHINESE_DIGITS[tens]) + "十" + (_CHINESE_DIGITS[ones] if ones else "")
    return digits


def foreign_ordinals(question: str, vocabulary_text: str) -> int:
    """Rounds, sessions and years (from 2000) the question names and the notice never does: 第六轮,
    上一轮 and 2021年 are another round and another year; 第5轮, 第八届 (the notice writes 八届) and 2035年
    (in （2021-2035）) are the notice's own."""
    count = 0
    for match in _ORDINAL_RE.finditer(question):
        number, unit, year = match.groups()
        if year:  # 1949年 is history, not a round; 2021-2035年 is a plan's span the notice gives
            in_span = match.start() > 0 and question[match.start() - 1] in "-—–~至到"
            known = int(year) < 2000 or f"{year}年" in vocabulary_text or (in_span and year in vocabulary_text)
        else:
            known = (_chinese_number(number) if number.isdigit() else number) + unit in vocabulary_text
        count += not known
    return count + sum(1 for m in _RELATIVE_ROUND_RE.finditer(question) if m.group() not in vocabulary_text)


def foreign_names(question: str, vocabulary_text: str, synonyms: dict, own: tuple[str, ...] = ()) -> list[str]:
    """Places and offices the question names that the notice never does (韶关市, 市公安局).

    :param own: the notices' issuers (中共清远市文化广电旅游体育局党组): a short form of one is no
        other office (文广局, 文体旅局), though no list holds every way citizens shorten it.
    """
    found = names(question)
    out = [n for n in found if n not in vocabulary_text and n not in synonyms
           and not (_OFFICE_RE.search(n) and any(abbreviates(n, issuer) for issuer in own))]
    # A place's own office (英德市文广旅体局) is another office, unless the place is the issuer's.
    for place, office in zip(found, found[1:]):
        # jieba may leave part of the office's name between them (英德市/文广/旅体局)
        joined = re.search(re.escape(place) + r"[\u4e00-\u9fff]{0,4}?" + re.escape(office), question)
        if (own and joined and PLACE_SUFFIX_RE.search(place) and _OFFICE_RE.search(office)
                and not any(place in issuer for issuer in own) and joined.group() not in vocabulary_text
                and place not in out and office not in out):
            out.append(joined.group())
    return out



def abbreviates(name: str, text: str) -> bool:
    """Whether ``name``'s characters all stand in the office name of ``text`` that ends with the
    same suffix (文广局, 文体旅局 in 文化广电旅游体育局): how Chinese shortens an office's name."""
    need = set(name[:-1])
    return any(need <= set(text[max(0, m.start() - 11):m.start()]) for m in re.finditer(re.escape(name[-1]), text))


def knows(word: str, vocabulary_text: str, synonyms: dict) -> bool:
    """Whether the knowledge base knows ``word``, or the word jieba glued a character onto (汤塘评
    in 汤塘评了啥 is 汤塘 and 评)."""
    if word in vocabulary_text or word in synonyms:
        return True
    return len(word) >= 3 and (word[:-1] in vocabulary_text or word[1:] in vocabulary_text)


def _idf():
    import jieba.analyse

    tfidf = jieba.analyse.default_tfidf
    return tfidf.idf_freq, tfidf.median_idf


@dataclass
class ScopeModel:
    """Standardised logistic regression: ``p = σ(w · (x − mean) / scale + b)``."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    embedding_model: str
    trained_on: dict
    # The same, learnt without the labelled-question signals: what decides for a notice staff have
    # labelled nothing of yet (the weights of a model that always had them lean on them).
    unlabelled: "ScopeModel | None" = None

    def probability(self, x: np.ndarray) -> float:
        if self.unlabelled is not None and np.isnan(x[_LABELLED_COLUMN]):
            return self.unlabelled.probability(x)
        # A signal that cannot be had (NaN: no labelled questions of a kind) is taken at its
        # mean, so it counts neither way.
        x = np.where(np.isnan(x), self.mean, x)
        z = float(np.dot(self.weights, (x - self.mean) / self.scale) + self.bias)
        return 1.0 / (1.0 + math.exp(-z))

    def to_json(self) -> dict:
        return {
            "features": list(FEATURES),
            "features_version": FEATURES_VERSION,
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(float(self.bias), 6),
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "threshold": self.threshold,
            "embedding_model": self.embedding_model,
            "trained_on": self.trained_on,
            **({"unlabelled": self.unlabelled.to_json()} if self.unlabelled is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> "ScopeModel":
        if data.get("features") != list(FEATURES) or data.get("features_version") != FEATURES_VERSION:
            raise ValueError("scope model was trained on other features")
        return cls(np.array(data["weights"]), float(data["bias"]), np.array(data["mean"]),
                   np.array(data["scale"]), float(data["threshold"]), data["embedding_model"],
                   data.get("trained_on", {}),
                   cls.from_json(data["unlabelled"]) if data.get("unlabelled") else None)


def learnt_on(library) -> dict[str, int]:
    """What the weights are learnt on, kept beside them: each notice loaded and how many labelled
    questions it had."""
    return {doc: len(library.questions.get(doc, [])) for doc in sorted(library.notices)}


def changes_since(trained_on: dict, library) -> dict:
    """How the library differs from the one the weights were learnt on (``trained_on``'s
    ``notices``): notices ``added`` and ``removed``, and the labelled-question counts that moved
    (``labels``: doc → [then, now]); ``current`` when the same notices are loaded. Weights learnt
    before notices were recorded say ``unknown``."""
    then = trained_on.get("notices")
    now = learnt_on(library)
    if not isinstance(then, dict):
        return {"current": False, "unknown": True, "notices": now}
    added, removed = sorted(set(now) - set(then)), sorted(set(then) - set(now))
    labels = {doc: [then[doc], now[doc]] for doc in sorted(set(now) & set(then)) if then[doc] != now[doc]}
    return {"current": not added and not removed, "added": added, "removed": removed, "labels": labels}


def load_models(path: Path = MODEL_FILE) -> list[dict]:
    """Every learnt model in the file, one per embedding model (engine) it was learnt under."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data.get("models", [data] if "weights" in data else [])


def model_entry(embedding_model: str, path: Path = MODEL_FILE) -> dict | None:
    """The learnt model's entry for ``embedding_model`` in the file, or None.

    :raises OSError, ValueError: the file cannot be read.
    """
    return next((m for m in load_models(path) if m.get("embedding_model") == embedding_model), None)


def save_model(model: ScopeModel, path: Path = MODEL_FILE) -> None:
    """Add or replace ``model``'s entry (keyed by its embedding model), atomically."""
    path = Path(path)
    try:
        models = [m for m in load_models(path) if m.get("embedding_model") != model.embedding_model]
    except (OSError, ValueError):
        models = []
    models.append(model.to_json())
    models.sort(key=lambda m: m.get("embedding_model", ""))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"models": models}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def fit(X: np.ndarray, y: np.ndarray, threshold: float, embedding_model: str, trained_on: dict,
        labelled_too: bool = True) -> ScopeModel:
    """Learn the weights (scikit-learn, L2-regularised logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    with np.errstate(all="ignore"):  # a column may be all NaN (no labelled questions at all)
        mean = np.nan_to_num(np.nanmean(X, axis=0), nan=0.0)
    X = np.where(np.isnan(X), mean, X)  # unknown signals at their mean (see ScopeModel.probability)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant column (float noise aside): no weight, and no division by 0
    model = LogisticRegression(C=REGULARISATION_C, max_iter=1000).fit((X - mean) / scale, y)
    unlabelled = None
    if labelled_too:
        # Without the labelled-question signals (at their mean: no weight), for notices with none.
        bare = X.copy()
        bare[:, _LABELLED_COLUMN] = mean[_LABELLED_COLUMN]
        unlabelled = fit(bare, y, threshold, embedding_model, dict(trained_on, without="labelled_margin"),
                         labelled_too=False)
    return ScopeModel(model.coef_[0], float(model.intercept_[0]), mean, scale, threshold, embedding_model, trained_on,
                      unlabelled)


# Signals that decide alone. On the tuning questions each is all but never wrong: a kind of fact
# the passage does not hold, a personal service asked for in the question's last clause, a
# person's name, another place or office (韶关市, 教育局), another round or year (第六轮,
# 2021年) — and an extractive answer cannot quote what is not there.
DECISIVE = ("type_unmet", "service_ask", "asks_name", "foreign_names", "foreign_ordinals", "about_now",
            "labelled_declined")


def abstains(model: ScopeModel, x: np.ndarray, threshold: float) -> bool:
    """The decision: out of scope at ``threshold`` or above, or when a decisive signal fires."""
    return model.probability(x) >= threshold or any(x[FEATURES.index(name)] >= 1 for name in DECISIVE)


class ScopePolicy:
    """Decide abstention from a search result.

    :param classifier: the NLU :class:`bot.nlu.IntentClassifier` (for ``oos_margin``).
    :param model_file: learnt weights; default ``bot/data/scope_model.json``.
    :param threshold: abstain at or above this probability; ``None`` keeps the learnt one.
    """

    def __init__(self, classifier, model_file: Path | None = None, threshold: float | None = None) -> None:
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.classifier = classifier
        self.model_file = Path(model_file or MODEL_FILE)
        self._threshold = threshold
        self.model: ScopeModel | None = None

    # ---- features ---------------------------------------------------------------------------

    def features(self, result, retriever, exclude: int | None = None) -> dict:
        """The signals for one search result of ``retriever`` (see the module docstring).

        :param exclude: an NLU example index to leave out of the k-NN (when training on it).
        """
        idf, median = _idf()
        vocabulary_text, synonyms = retriever.vocabulary_text, retriever.synonyms
        question = result.query.text
        ws = [w for w in words(question) if len(w) >= 2]
        known = [w for w in ws if knows(w, vocabulary_text, synonyms)]
        foreign = foreign_names(question, vocabulary_text, synonyms, retriever.issuers)
        top = result.hits[0]
        vocabulary = vocabulary_of(retriever)
        ask = main_clause(result.query.normalized)  # service, type and name cues read the ask itself
        subject = ask_subject(result.query.normalized, synonyms)
        # The words of the passage found (its text, heading and aliases), with the synonyms' keys
        # for the words they expand to there: what of the question that passage speaks to.
        passage = retriever.passage_words(top.chunk)
        in_passage = {w for w in ws if w in passage or any(v in passage for v in synonyms.get(w, ()))}
        unknown_idf = [idf.get(w, median) for w in ws if w not in known]
        total_idf = sum(idf.get(w, median) for w in ws)
        self.classifier.warm_up()
        sims = self.classifier.vectors @ result.query.vector.reshape(-1)
        if exclude is not None:
            sims = sims.copy()
            sims[exclude] = -1.0
        labels = self.classifier.labels
        oos = np.sort(sims[labels == "out_of_scope"])[-2:].mean()
        ins = np.sort(sims[labels == "ask_notice"])[-2:].mean()
        return {
            "service": 1.0 if _service(result.query.normalized, passage, subject, top.chunk.heading, vocabulary) else 0.0,
            "service_ask": 1.0 if _service(ask, passage, subject, top.chunk.heading, vocabulary) else 0.0,
            "max_unknown_idf": max(unknown_idf) if unknown_idf else 0.0,
            "foreign_names": float(len(foreign)),
            "foreign_ordinals": float(foreign_ordinals(result.query.normalized, vocabulary_text)),
            "type_unmet": 1.0 if type_unmet(ask, top.chunk.text, ask_subject(ask, synonyms), retriever.area, vocabulary)
            else 0.0,
            "asks_name": 1.0 if _ASKS_NAME_RE.search(ask) else 0.0,
            "about_now": 1.0 if _NOW_RE.search(result.query.normalized) else 0.0,
            "labelled_declined": 1.0 if (result.labelled_unanswerable is not None
                                         and result.labelled_unanswerable >= LABEL_DECIDES
                                         and result.labelled_unanswerable > (result.labelled_answerable or -1.0))
            else 0.0,
            "sentence": float(top.scores.get("sentence", 0.0)),
            "dense": float(top.scores.get("dense", 0.0)),
            "coverage": len(known) / len(ws) if ws else 1.0,
            "idf_coverage": (sum(idf.get(w, median) for w in known) / total_idf) if ws and total_idf else 1.0,
            "passage_coverage": (sum(idf.get(w, median) for w in ws if w in in_passage) / total_idf)
            if ws and total_idf else 1.0,
            "unknown": float(len(ws) - len(known)),
            "oos_margin": float(oos - ins),
            # NaN when the notice found has no labelled questions of one kind: no evidence.
            "labelled_margin": (float(result.labelled_unanswerable - result.labelled_answerable)
                                if result.labelled_answerable is not None and result.labelled_unanswerable is not None
                                else math.nan),
            "bm25": math.log1p(max(0.0, float(top.scores.get("bm25", 0.0)))),
            "bigram": math.log1p(max(0.0, float(top.scores.get("bigram", 0.0)))),
        }

    # ---- the model --------------------------------------------------------------------------

    def warm_up(self, retriever) -> None:
        """Load the learnt weights; relearn from the NLU examples if they fit another model."""
        if self.model is not None:
            return
        # Load the name tagger's dictionary and tag every passage now, not on citizens' questions.
        for chunk in retriever.chunks:
            _passage_names(chunk.text)
        name = retriever.embedder.name
        try:
            entry = model_entry(name, self.model_file)
            if entry is None:
                raise ValueError(f"no weights learnt under {name}")
            model = ScopeModel.from_json(entry)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("scope model unusable (%s); learning it from the NLU examples", exc)
            model = self.train(retriever, [], threshold=0.5)
        self.model = model

    def changes_since_learnt(self, library) -> dict:
        """:func:`changes_since` for the weights loaded (call after :meth:`warm_up`)."""
        return changes_since(self.model.trained_on if self.model is not None else {}, library)

    @property
    def threshold(self) -> float:
        return self._threshold if self._threshold is not None else self.model.threshold

    def examples(self, retriever, questions: list[tuple[str, bool]] = ()) -> tuple[np.ndarray, np.ndarray, int]:
        """Feature rows and labels (1 = out of scope) to learn from: the NLU ``ask_notice``/
        ``ask_contact``/``out_of_scope`` examples (each left out of its own k-NN), then
        ``questions`` (text, out_of_scope?). :returns: (rows, labels, how many are NLU examples)."""
        retriever.warm_up()
        self.classifier.warm_up()
        rows, labels = [], []
        for i, example in enumerate(self.classifier.examples):
            if example.intent in ("ask_notice", "ask_contact", "out_of_scope"):
                result = retriever.search_full(example.text)
                rows.append(self._vector(self.features(result, retriever, exclude=i)))
                labels.append(int(example.intent == "out_of_scope"))
        nlu = len(rows)
        for question, oos in questions:
            result = retriever.search_full(question)
            rows.append(self._vector(self.features(result, retriever)))
            labels.append(int(oos))
        return np.array(rows), np.array(labels), nlu

    def train(self, retriever, questions: list[tuple[str, bool]], threshold: float) -> ScopeModel:
        """Learn weights from the NLU examples plus ``questions`` (see :meth:`examples`)."""
        rows, labels, nlu = self.examples(retriever, questions)
        trained_on = {"nlu_examples": nlu, "questions": len(questions), "notices": learnt_on(retriever.library)}
        return fit(rows, labels, threshold, retriever.embedder.name, trained_on)

    @staticmethod
    def _vector(features: dict) -> np.ndarray:
        return np.array([features[name] for name in FEATURES], dtype=np.float64)

    def decide(self, result, retriever) -> tuple[bool, dict]:
        """:returns: (abstain?, the features and the probability that decided)."""
        self.warm_up(retriever)
        features = self.features(result, retriever)
        x = self._vector(features)
        p = self.model.probability(x)
        features = {k: None if math.isnan(v) else round(v, 4) for k, v in features.items()}  # JSON has no NaN
        features["p_out_of_scope"] = round(p, 4)
        features["decisive"] = [name for name in DECISIVE if features[name] >= 1]
        return abstains(self.model, x, self.threshold), features
