"""Text normalisation and tokenisation shared by indexing and querying.

Both sides must see text the same way: Traditional → Simplified (opencc), full-width letters and
digits folded, jieba words (with the notices' headings and key terms as a user dictionary) for
BM25, and character bigrams so that a word jieba splits differently still matches.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Iterable

import jieba
from opencc import OpenCC

jieba.setLogLevel(logging.WARNING)

_T2S = OpenCC("t2s")
_LOCK = threading.Lock()
_USER_WORDS: set[str] = set()

# Function words and the genre's boilerplate: they match everything and so rank nothing.
STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 等 对 把 被 将 从 向 为 以 于 就 也 都 而 并 但 又 还 着 过 吗 呢 吧 啊 呀 嘛 么
    哪 哪些 哪个 哪里 哪儿 什么 怎么 怎么样 怎样 如何 多少 几 几个 有没有 有 没有 没 是否 是不是 能 能不能 会 会不会
    可以 可 要 想 请问 请 问 问下 一下 下 我 我们 你 你们 您 他 他们 它 这 那 这个 那个 这些 那些 这样 那样
    个 些 把 让 给 跟 同 自己 咱们 咱 大家 现在 目前 情况 方面 工作 进行 开展 加强 进一步 相关 有关 推进
    推动 做 做了 做好 搞 搞得 弄 到底 具体 一些 一点 咋 咋样 啥 谁 为什么 多 呗 哦 嗯 吗 呢 能否 关于 通报
    里 里面 上 中 说 讲 提到 提 方面 问题 怎么回事 进展 事 事情 东西 , 。 ？ ! ！ ? 、 ： ； “ ” （ ） ( )
    """.split()
)

_PUNCT_RE = re.compile(r"[\s\u3000]+")
_WORD_RE = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]+|\d+(?:\.\d+)?")


_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


def has_chinese(text: str) -> bool:
    """Whether ``text`` holds at least one Chinese character."""
    return bool(_CJK_RE.search(text))


# Traditional spellings that opencc's t2s keeps as variants, not the Simplified standard form
# (Hong Kong and Taiwan write 甚麼 for 什麼; t2s turns it into 甚么, which no notice uses).
_VARIANTS = {"甚么": "什么", "甚麽": "什么", "爲": "为", "纔": "才"}
_VARIANT_RE = re.compile("|".join(map(re.escape, _VARIANTS)))


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese; other text unchanged."""
    return _VARIANT_RE.sub(lambda m: _VARIANTS[m.group()], _T2S.convert(text))


def normalize(text: str) -> str:
    """Simplified Chinese, full-width ASCII folded to half-width, white space collapsed."""
    text = to_simplified(text)
    text = "".join(unicodedata.normalize("NFKC", ch) if "\uff01" <= ch <= "\uff5e" else ch for ch in text)
    return _PUNCT_RE.sub(" ", text).strip()


# How much of a message the bot reads. Questions run to a few dozen characters; what tags and
# embeds a message grows with its length (a 500-character one cost 15–70 × a typical question),
# so a long message is read as its asking sentences, last first, then its opening ones.
READ_CHARS = 64
_RUN_RE = re.compile(r"(\D)\1{3,}")  # never digits: 10000元
_MESSAGE_SENTENCE_RE = re.compile(r"(?<=[。！？!?；;\n])")
# A question's marks: particles, question words, A-not-A (打不打雷, 开没开).
ASKS_RE = re.compile(
    r"[吗呢？?]|什么|怎么|哪|几|多少|谁|啥|咋|干嘛|如何|是否|有没有|能不能|可不可以|([\u4e00-\u9fff])[不没]\1|"
    # a negation closing a clause after a verb (公开不, 核算过没有, 有规定没, 好咗未), not after an
    # adverb (还没有, 都没): the V-neg question
    r"(?<![还都也并从根本就])(?:[不没冇未]|没有)[呀啊吧呢]?(?=[\s，,。？?！!]|$)|"
    # an alternative question (是定期的还是突击的)
    r"是[^，,。]{1,12}还是|"
    # Cantonese: 点样 (how), 点解 (why), 有冇, 係唔係, 边个 / 边度 (who, where), 咩 (what)
    r"点样|点解|有冇|係唔係|边个|边度|边间|咩")
# Question words that ask nothing: one with 也 or 都 after it is a universal (什么都没变, 啥也不管,
# 谁都知道, 怎么也办不好), and 没几 / 没多少 means "few" (没几个人看得到).
_INDEFINITE_RE = re.compile(r"(?:什么|啥|谁|哪儿|哪里|哪|怎么|多少)[\u4e00-\u9fff]{0,2}?[也都]|[没不](?:几|多少)")


def asks(text: str) -> bool:
    """Whether ``text`` asks something: a question mark or particle, a question word, A-not-A;
    question words used as indefinites (什么都没变, 没几个人) do not count."""
    return bool(ASKS_RE.search(_INDEFINITE_RE.sub("，", text)))


def condense(text: str, limit: int = READ_CHARS) -> str:
    """What the bot reads of a message: a run of one character (哈哈哈哈…, ？？？？) cut to three,
    and of a message longer than ``limit``, the sentences that ask (the last first) and then the
    opening ones, in their order, within ``limit``; an asking sentence too long for that keeps its
    end, where Chinese puts the ask."""
    text = _RUN_RE.sub(lambda m: m.group(1) * 3, text)
    if len(text) <= limit:
        return text
    sentences = [s for s in _MESSAGE_SENTENCE_RE.split(text) if s.strip()]
    asking = [i for i in reversed(range(len(sentences))) if asks(sentences[i])]
    keep: dict[int, str] = {}
    budget = limit
    for i in asking + [i for i in range(len(sentences)) if i not in asking]:
        if len(sentences[i]) <= budget:
            keep[i] = sentences[i]
        elif i in asking and not keep:
            keep[i] = sentences[i][-budget:]  # the ask ends its sentence
        else:
            continue
        budget -= len(keep[i])
    if not keep:
        return text[-limit:]
    return "".join(keep[i] for i in sorted(keep))


def add_user_words(words: Iterable[str]) -> None:
    """Teach jieba the notices' own terms (headings, quoted names) so they stay whole."""
    with _LOCK:
        for word in words:
            word = word.strip()
            if 2 <= len(word) <= 16 and word not in _USER_WORDS:
                jieba.add_word(word, freq=2000)
                _USER_WORDS.add(word)


def words(text: str) -> list[str]:
    """jieba words of normalised text, without stop words and punctuation."""
    out = []
    for token in jieba.lcut(normalize(text)):
        token = token.strip().lower()
        if token and token not in STOPWORDS and _WORD_RE.search(token):
            out.append(token)
    return out


_NAME_FLAGS = frozenset({"nt"})
# A name does not start with a determiner or a size: 各县区, 全市, 本局, 大城市, 小县城.
_NOT_A_NAME_START = ("各", "全", "本", "该", "此", "大", "小", "哪", "某", "每")
# ...when what follows is generic (大城市, 各县区, 本局); 大埔县 and 本溪市 are names.
_GENERIC_TAIL = frozenset({"市", "县", "区", "县区", "市县", "城市", "县城", "城", "局", "单位", "机关", "乡镇"})
_BODY_RE = re.compile(r"[\u4e00-\u9fff][委厅]")  # 省委, 团委: bodies with two-character names
# (…馆 and …院 are venues as often as bodies: 游泳馆, 篮球馆 name no other office.)
_OFFICE_SUFFIX_RE = re.compile(r"(局|厅|委|办|公司|集团)$")
# A place suffix counts on a word jieba tags as a place: 韶关市, not 进社区.
PLACE_SUFFIX_RE = re.compile(r"(省|市|县|区|镇|乡|村)$")


_NAMES: list = []


def _name_tokenizer():
    """jieba's part-of-speech tagger on its own dictionary, apart from the words the index teaches
    the shared one: 市博物馆 as one word would hide the 肇庆市 in 肇庆市博物馆."""
    if _NAMES:  # set once; no lock on the hot path
        return _NAMES[0]
    with _LOCK:
        if not _NAMES:
            import jieba.posseg

            _NAMES.append(jieba.posseg.POSTokenizer(jieba.Tokenizer()))
        return _NAMES[0]


# jieba finds words its dictionary lacks with an HMM whose cost grows with the run of unknown
# characters (80 random ones took 0.2 s); a clause longer than this is tagged by the dictionary
# alone: no question's clause is that long.
HMM_CLAUSE_CHARS = 40
_CLAUSE_SPLIT_RE = re.compile(r"([，,。！？!?；;、\s]+)")


def pos_tag(text: str, tokenizer=None) -> list:
    """jieba's part-of-speech tags for ``text`` (``tokenizer``: a POSTokenizer; default jieba's
    shared one), its HMM on clauses of at most HMM_CLAUSE_CHARS characters."""
    if tokenizer is None:
        import jieba.posseg

        tokenizer = jieba.posseg.dt
    out: list = []
    for clause in _CLAUSE_SPLIT_RE.split(text):
        if clause:
            out.extend(tokenizer.lcut(clause, HMM=len(clause) <= HMM_CLAUSE_CHARS))
    return out


class _Token:
    __slots__ = ("word", "flag")

    def __init__(self, word: str, flag: str) -> None:
        self.word, self.flag = word, flag


# The parts of an office's name that jieba cuts off its bare suffix: 卫生/健康/局, 文化/和/旅游/厅.
_OFFICE_PART_FLAGS = ("n", "a", "vn", "nz", "j")


def _joined_offices(tokens: list) -> list:
    """Join a bare office suffix (局, 厅, 委) to the name words before it: jieba cuts 卫生健康局
    into 卫生/健康/局 and 文化和旅游厅 into 文化/和/旅游/厅, and only the whole is a name. A level
    (市, 省) is left out, and an office before 和 stays apart (财政局和卫生健康局)."""
    out: list = []
    for token in tokens:
        if token.word in ("局", "厅", "委") and out:
            parts = []
            while out and len(parts) < 4 and not _OFFICE_SUFFIX_RE.search(out[-1].word) and (
                    out[-1].flag.startswith(_OFFICE_PART_FLAGS) and out[-1].flag != "ns" and len(out[-1].word) > 1
                    or out[-1].word == "和" and parts):
                parts.insert(0, out.pop())
            while parts and parts[0].word == "和":  # 财政局和/卫生健康局: the 和 joins two offices
                out.append(parts.pop(0))
            if parts:
                out.append(_Token("".join(p.word for p in parts) + token.word, "nt"))
                continue
        out.append(token)
    return out


# jieba tags some plain phrases as organisations (新进展/nt); a real one ends like one.
_ORGANISATION_END_RE = re.compile(r"(?:[局厅委办院所会社部队厂站馆组团校处科司行]|公司|集团|中心|协会|大学|学院|政府)$")


def names(text: str) -> list[str]:
    """Words of normalised text that look like names of places, bodies or people.

    An office suffix (…局, …厅, …委) on a noun (not 怎么办), a place suffix on a word tagged as a
    place (…市, …县) or jieba's organisation tag marks them, in words of three characters or more;
    jieba's place and person tags alone are too noisy (东西, 台风 and 洪水 come out as names).
    """
    out = []
    tokens = _joined_offices(pos_tag(normalize(text), _name_tokenizer()))
    for i, token in enumerate(tokens):
        word = token.word.strip()
        generic = word.startswith(_NOT_A_NAME_START) and word[1:] in _GENERIC_TAIL
        if ((len(word) >= 3 or _BODY_RE.fullmatch(word)) and _CJK_RE.match(word) and not generic
                and (token.flag in _NAME_FLAGS and _ORGANISATION_END_RE.search(word)
                     or token.flag.startswith(("n", "j")) and _OFFICE_SUFFIX_RE.search(word)
                     or (token.flag.startswith("ns") and PLACE_SUFFIX_RE.search(word)))):
            before = tokens[i - 1] if i else None
            # A place jieba knows without its suffix, right before an office: 广州/文旅局 is one name.
            if (before is not None and before.flag.startswith("ns") and len(before.word) >= 2
                    and _OFFICE_SUFFIX_RE.search(word) and not PLACE_SUFFIX_RE.search(before.word)):
                word = before.word + word
            out.append(word)
    return out


def bigrams(text: str) -> list[str]:
    """Character bigrams of each run of Chinese characters (single characters for 1-char runs)."""
    out = []
    for run in re.findall(r"[\u4e00-\u9fff]+|[A-Za-z0-9]+", normalize(text)):
        if len(run) == 1 or not "\u4e00" <= run[0] <= "\u9fff":
            out.append(run.lower())
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


_SENTENCE_END = "。！？!?；;"


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (shifted by ``offset``), ends inclusive of the mark.

    A point label (一是/二是…) and a line break also start a new sentence; closing quotes and
    brackets stay with their sentence.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _SENTENCE_END or ch == "\n":
            end = i + 1
            while end < n and text[end] in "”’）)」』":
                end += 1
            spans.append((start, end))
            start = i = end
            continue
        i += 1
    if start < n:
        spans.append((start, n))
    out = []
    for s, e in spans:
        chunk = text[s:e]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk) - len(chunk.rstrip())
        if chunk.strip() and re.search(r"[\u4e00-\u9fffA-Za-z0-9]", chunk):
            out.append((offset + s + lead, offset + e - trail))
    return out
