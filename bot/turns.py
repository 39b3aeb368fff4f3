"""Reading a turn in its conversation: is it about the last subject, and if so, how.

A follow-up is a turn that only makes sense with the one before it. Chinese marks it by grammar,
not by length: an ellipsis (那…呢, 还有呢, 后来呢, 具体说说), a pointer back (那边, 这方面), or a turn
that names only a place the last subject applies to (连南呢, 英德的情况). Everything else is read on
its own, however short: 明天天气怎么样 after a topic is the same question it is at the start.

The cue words below are the language's, not any notice's; what a turn names (places, subjects) is
looked up in the notices themselves (the issuer's area, the index's vocabulary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from index.chunking import passage_anchor
from index.text import PLACE_SUFFIX_RE, STOPWORDS, names, normalize, pos_tag

# 那连南呢, 还有呢, 经费呢: a sentence-final 呢 (or its dialect forms) after a bare noun phrase.
_ELLIPTIC_END_RE = re.compile(r"(?:呢|嘞|咧|捏)[\s？?！!。~～…]*$")
# 那…, 那么…, 至于…, 要是换成…: a turn opening on the last one.
# (那条美食线路, 那个剧场: 那 before a measure word points at a thing, it does not resume a topic.)
_BACK_START_RE = re.compile(r"^(?:那么|那(?![条个家些位种次座所项件处批])|那如果|如果是|要是|换成|至于|换到)")
# More on the same subject: 还有呢, 然后呢, 后来呢, 具体点, 详细说说, 接着说.
_MORE_START_RE = re.compile(r"^(?:讲|说|再讲|再说)?(?:还有|另外|其他|其它|别的|然后|后来|之后|接下来|再|继续|接着|具体|详细|展开|多)")
# Pointers back to the last subject: 那边, 这方面, 这一块, 这件事; 也 (直属单位也要搞吗: as the last
# subject does); 跟…有啥关系 (how something relates to it).
_POINTER_RE = re.compile(r"那边|那里|这边|这里|这方面|那方面|这一块|那一块|这块|这件事|那件事|此事|其中|"
                         r"(?<=[\u4e00-\u9fff])也(?=要|有|会|在|是|能|搞|做|算|管|包括|一样)|"
                         r"(?<=[\u4e00-\u9fff])(?:那个|这个)(?=是|呢|怎么|咋|啥|[？?]|$)|"
                         r"^(?:跟|和|与)\S+(?:有|是)(?:啥|什么|哪些)?(?:关系|联系|关联)")
# Words that carry the ellipsis or the ask, never a subject of their own (beyond index.text's
# stop words): what is left of a turn without them is what it adds to the last subject.
_FILLER = frozenset(
    """
    还有 另外 其他 其它 别的 然后 后来 之后 接下来 再 继续 接着 具体 详细 展开 说说 讲讲 聊聊 介绍 介绍一下
    多说 再说 补充 那边 这边 那里 这里 这方面 那方面 一块 这块 这件 那件 此事 其中 的话 如果 要是 换成 至于
    怎么样了 咋样了 怎么样 咋样 咋回事 情况 进度 进展 如何 怎样 状况 呢 吗 吧 啊 呀 嘞 咧 捏 哈 么 啦 喽 哦
    多点 点 些 更 还 也 又 都 一下 知道 了解 想 看看 内容 部分 地方 那么 那个 这个 那些 这些 方面 呗 事 事儿
    关系 联系 关联 回事
    """.split()
)
# What a turn adds is what it names: nouns, nominal verbs (经费, 内审), the index's own terms (jieba
# tags user words x), abbreviations, idioms, distinctions (小型) and times (今年). A verb (建好, 开放)
# or an ask (几时, 多少) adds no subject: 几时能建好 asks about the last one.
_NAMING_FLAGS = ("n", "vn", "x", "j", "i", "b", "t", "l", "eng")
# A word that opens on an ask (哪来, 多少钱, 几座) asks; it adds no subject.
_ASK_RE = re.compile(r"[几多哪啥咋谁]|什么|怎么|如何|有没有|是不是|为什么|为啥|([\u4e00-\u9fff])[不没]\1")


@dataclass
class Context:
    """What the conversation so far offers a follow-up (from the tracker's slots).

    :param question: the last question answered from a notice.
    :param doc: the notice of the passage that answered it.
    :param anchor: that passage (an item, a point of part 一, the preamble…).
    :param quoted: the notice-text spans already quoted from it.
    """

    question: str | None = None
    doc: str | None = None
    anchor: str | None = None
    quoted: list[tuple[int, int]] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.anchor)


@dataclass
class Reading:
    """How the answerer reads one turn.

    ``kind``: ``standalone`` (read on its own), ``more`` (more of the last passage: 还有呢),
    ``ask`` (a new ask of the last subject, naming nothing else: 都在哪几个地方, 测了多少人呢),
    ``place`` (the last subject, in a place: 那连南呢, 英德有没有镇入选) or ``refine`` (the last
    subject, narrowed to what the turn adds: 那经费呢).
    """

    kind: str = "standalone"
    places: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    cue: str = ""
    # Read as a follow-up on no cue, only because it names nothing of its own: the answer
    # keeps this reading only if the last passage answers it.
    tentative: bool = False

    @property
    def follow_up(self) -> bool:
        return self.kind != "standalone"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "places": self.places, "adds": self.adds, "cue": self.cue,
                "tentative": self.tentative}


class TurnReader:
    """Read turns against the notices the retriever holds.

    :param retriever: the warmed-up :class:`index.search.Retriever` (its issuers' area and
        vocabulary say which places the notices know).
    """

    def __init__(self, retriever) -> None:
        self.retriever = retriever

    def places(self, text: str) -> list[str]:
        """The places ``text`` names: the issuers' own (连南, 英德市), then any other jieba tags
        as a place (广州市, 汤塘镇), longest first so 连南县 is one place, not two."""
        norm = normalize(text)
        found: list[str] = []
        for place in sorted(self.retriever.area, key=len, reverse=True):
            if place in norm and not any(place in f for f in found):
                found.append(place)
        for name in names(norm):
            if PLACE_SUFFIX_RE.search(name) and not any(name in f or f in name for f in found):
                found.append(name)
        return found

    def read(self, text: str, context: Context | None) -> Reading:
        """:returns: how to answer ``text`` given ``context`` (standalone when there is none)."""
        if context is None or not context.usable:
            return Reading()
        norm = normalize(text).strip()
        bare = re.sub(r"[\s，,。？?！!~～…、：:；;\"'“”]+", "", norm)
        if not bare:
            return Reading()
        cue = ""
        for pattern in (_ELLIPTIC_END_RE, _BACK_START_RE, _MORE_START_RE, _POINTER_RE):
            match = pattern.search(bare)
            if match:
                cue = match.group().strip("？?！!。~～… ")
                break
        places = self.places(bare)
        # What the turn adds, without the words that carry the ellipsis (那钱从哪来 is 钱, not 那钱).
        rest = _ELLIPTIC_END_RE.sub("", _BACK_START_RE.sub("", bare))
        for place in places:
            rest = rest.replace(place, " ")
        adds = [w for w in _naming_words(rest) if len(w) >= 2 and w not in _FILLER and not _ASK_RE.match(w)]
        asks = bool(_ASK_RE.search(rest))
        if not adds and places:
            return Reading("place", places, [], cue)
        if (cue and not adds and not asks and _ELLIPTIC_END_RE.search(bare)
                and not any(p.search(bare) for p in (_BACK_START_RE, _MORE_START_RE, _POINTER_RE))):
            # 好嘞, 系咧: a final particle after no noun phrase resumes nothing (那经费呢 and 还有呢 do).
            return Reading()
        if not cue:
            if places and all(w in self.passage_text(context) for w in adds):
                # 英德有没有镇入选 after 入选的特色镇: the last subject, in another place
                return Reading("place", places, adds, "")
            if not adds and asks:
                return Reading("ask", [], [], "")
            if asks and self._only_common(adds):
                # 谁来检查 after 工会经费: an ask naming only what many passages speak of (检查);
                # what the notice never says (天气) is a subject of its own.
                return Reading("ask", [], [], "", tentative=True)
            return Reading()
        if not adds:
            return Reading("ask" if asks else "more", [], [], cue)
        return Reading("refine", places, adds, cue)

    def _only_common(self, adds: list[str]) -> bool:
        """Whether every word is one the notices use across many passages (检查, 落实), so it
        singles out no subject."""
        retriever = self.retriever
        vocabulary = retriever.vocabulary_text
        specific = set(retriever.specific_words(" ".join(adds)))
        return all(w in vocabulary and w not in specific for w in adds)

    def names_only_the_last(self, text: str, context: Context | None) -> bool:
        """Whether everything ``text`` names stands in the passage last answered from (发了什么文件
        after 第3条, which speaks of its documents): a question that may be about it."""
        if context is None or not context.usable:
            return False
        named = [w for w in _naming_words(normalize(text)) if len(w) >= 2 and w not in _FILLER]
        passage = self.passage_text(context)
        return bool(passage) and all(w in passage for w in named)

    def passage_text(self, context: Context) -> str:
        """What the lexical rankers read of the passage last answered from."""
        retriever = self.retriever
        return " ".join(retriever.passage_words(c) for c in retriever.chunks
                        if c.doc == context.doc and base_anchor(c) == context.anchor)


def _naming_words(text: str) -> list[str]:
    return [t.word.strip().lower() for t in pos_tag(text)
            if t.flag.startswith(_NAMING_FLAGS) and t.word.strip() and t.word not in STOPWORDS]


def base_anchor(chunk) -> str:
    """The passage a chunk belongs to: a split item's pieces (item-4-p2) are the item."""
    return passage_anchor(chunk.kind, chunk.anchor)
