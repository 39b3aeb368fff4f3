"""Extractive answers with citations, and honest abstention.

Every sentence an answer shows is a slice of a published notice: the composer picks 1–3
sentences of the passages that really answer, names the item they come from, and abstains
(with the notice's phone and e-mail) when nothing does. Structure questions ("整改了哪些方面",
"第十六条") are answered from the parsed structure, not from search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


from index.search import Retriever, SearchResult
from index.text import bigrams, has_chinese, normalize, words
from bot.itemref import parse_item_number
from bot.scope import main_clause
from knowledge.parser import Node

MAX_QUESTION_CHARS = 500
FOLLOW_UP_MARGIN = 0.15

_OVERVIEW_RE = re.compile(
    r"(整改了?哪些方面|哪[几些]个方面|几个方面|多少个方面|主要内容|有哪些整改任务|整改任务有哪些|"
    r"(?:一共|总共|共有|通报有|通报共)多少条|内容概要|概况|目录|大纲|"
    r"(?:通报|文件|公告|这份|这个)\S{0,4}(?:讲|说)了?(?:些)?(?:什么|啥))"
)
_NUMERIC_RE = re.compile(r"(多少|几[个座条家名项次年月日号人所处]?|哪一?年|哪天|什么时候|何时|时间|日期|比例|百分之|比率|数量|规模)")
# A content question, a safety one, the overview, an item by number, a number, the contact
# paragraph: tests/bot/test_answer.py checks that each gets a real (non-abstained) answer.
WELCOME_SUGGESTIONS = (
    "应急广播建设进展如何？",
    "旅游景区的安全谁来管？",
    "整改了哪些方面？",
    "第16条讲了什么？",
    "全市建了多少座旅游厕所？",
    "如何反映意见建议？",
)
_DIGIT_RE = re.compile(r"\d|[一二三四五六七八九十百千万]+[个座条家名项批]")


@dataclass
class Citation:
    """Where an answer's sentences come from (the CLI's JSON contract)."""

    doc: str
    number: str
    heading: str
    path: str
    anchor: str
    passage: str
    quote: str
    score: float
    title: str = ""
    quote_spans: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "doc": self.doc,
            "number": self.number,
            "heading": self.heading,
            "path": self.path,
            "anchor": self.anchor,
            "passage": self.passage,
            "quote": self.quote,
            "score": round(float(self.score), 4),
        }


@dataclass
class Answer:
    """One reply to one question."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    kind: str = "search"  # search | item | overview | contact | abstain | empty
    debug: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON contract: question, answer, abstained, citations (≤ 3, best first)."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations[:3]],
        }


class Answerer:
    """Compose extractive, cited answers from a :class:`Retriever`.

    :param retriever: the hybrid retriever (injected, warmed up on first use).
    :param max_sentences: most sentences quoted from one passage.
    :param max_citations: most passages cited.
    :param policy: when to abstain (a :class:`bot.scope.ScopePolicy`); default: one over the
        Rasa NLU examples under the retriever's embedding model.
    """

    def __init__(self, retriever: Retriever, max_sentences: int = 3, max_citations: int = 3,
                 policy=None) -> None:
        if not 1 <= max_sentences <= 5:
            raise ValueError(f"max_sentences must be 1..5, got {max_sentences}")
        if not 1 <= max_citations <= 5:
            raise ValueError(f"max_citations must be 1..5, got {max_citations}")
        self.retriever = retriever
        self.max_sentences = max_sentences
        self.max_citations = max_citations
        if policy is None:
            from bot.nlu import IntentClassifier
            from bot.scope import ScopePolicy

            policy = ScopePolicy(IntentClassifier(retriever.embedder, cache_dir=retriever.build_dir))
        self.policy = policy
        self._overview_words: set[str] | None = None

    def warm_up(self) -> None:
        self.retriever.warm_up()
        self.policy.warm_up(self.retriever)

    # ---- the notice, as a citizen sees it ----------------------------------------------------

    @property
    def library(self):
        self.retriever.warm_up()
        return self.retriever.library

    def primary(self):
        """The (first) notice and its metadata."""
        doc = next(iter(self.library.notices))
        return self.library.notices[doc], self.library.meta[doc]

    def contact_line(self) -> str:
        notice, _ = self.primary()
        c = notice.contact
        parts = []
        if c.phone:
            parts.append(f"联系电话 {c.phone}")
        if c.email:
            parts.append(f"电子邮箱 {c.email}")
        return "，".join(parts)

    # ---- entry point ------------------------------------------------------------------------

    def answer(self, question: str, context: dict | None = None) -> Answer:
        """Answer one question.

        :param question: what the citizen typed.
        :param context: optional follow-up context, e.g. ``{"last_item": "item-16"}``: a short
            question that names no topic of its own is searched together with that item.
        :returns: the :class:`Answer` (``abstained`` when the notice does not answer).
        """
        question = (question or "").strip()
        if not question:
            return Answer(question, "请输入您想了解的问题，例如“应急广播建设进展如何？”。", False, kind="empty",
                          suggestions=self.default_suggestions())
        question = question[:MAX_QUESTION_CHARS]
        number = parse_item_number(question)
        if number is not None:
            return self.item_answer(number, question)
        if _OVERVIEW_RE.search(main_clause(normalize(question))) and not self.names_a_subject(question):
            return self.overview(question)
        return self.search_answer(question, context or {})

    def names_a_subject(self, question: str) -> bool:
        """Whether the question names a subject that singles out a few passages (固定资产, 保密工作)
        beyond the words people use to ask for an overview (the NLU ``ask_overview`` examples):
        "旅游厕所的整改任务有哪些" wants 第4条, not the list of all topics."""
        if self._overview_words is None:
            classifier = getattr(self.policy, "classifier", None)
            if classifier is not None:
                classifier.warm_up()
            examples = getattr(classifier, "examples", None) or []
            self._overview_words = {w for e in examples if e.intent == "ask_overview" for w in words(e.text)}
        return any(w not in self._overview_words for w in self.retriever.specific_words(question))

    def item_answer(self, number: int, question: str = "") -> Answer:
        """The numbered item ``number``, whole, or a polite note that it does not exist."""
        notice, _ = self.primary()
        item = notice.item(number)
        items = notice.items()
        if item is None:
            text = f"本通报共有{len(items)}条整改任务（第1条至第{len(items)}条），没有第{number}条。您可以输入 1 到 {len(items)} 之间的条目编号查询。"
            return Answer(question, text, False, kind="item", suggestions=self.default_suggestions())
        body = _body(notice, item)
        citation = self._citation_for_node(item, body, [(0, len(body))], 1.0)
        text = f"通报第{item.number}条“{item.heading}”（属于{_topic_of(notice, item)}）：{body}"
        return Answer(question, text, False, [citation], self.related_suggestions(item.anchor), kind="item")

    def overview(self, question: str = "") -> Answer:
        """The topics of part 二 with their item ranges: what was rectified, at a glance."""
        notice, meta = self.primary()
        lines = []
        for topic in notice.topics():
            numbers = [i.number for i in topic.children if i.kind == "item"]
            span = f"第{numbers[0]}条" if len(numbers) == 1 else f"第{numbers[0]}—{numbers[-1]}条"
            lines.append(f"{topic.label}{topic.heading.removeprefix('关于')}（{span}）")
        items = notice.items()
        text = (
            f"{meta.full_title}从{len(lines)}个方面通报了{len(items)}条整改任务的落实情况：\n"
            + "\n".join(lines)
            + "\n您可以问具体内容，或输入条目编号（如“第16条”）查看原文。"
        )
        return Answer(question, text, False, [], self.default_suggestions(), kind="overview")

    def contact_answer(self, question: str = "") -> Answer:
        """The closing paragraph: how to give comments, quoted."""
        notice, _ = self.primary()
        node = notice.find("contact")
        citation = self._citation_for_node(node, node.text, [(0, len(node.text))], 1.0)
        text = f"根据通报结尾：{node.text}"
        return Answer(question, text, False, [citation], self.default_suggestions(), kind="contact")

    # ---- search answers ---------------------------------------------------------------------

    def search_answer(self, question: str, context: dict) -> Answer:
        retriever = self.retriever
        result = retriever.search_full(question, top_k=5)
        abstain, features = self.policy.decide(result, retriever)
        followed = None
        quote_basis = result  # sentences are chosen by the question itself, even in a follow-up
        if context.get("last_item") and _is_follow_up(question, features):
            followed = self._follow_up(question, context)
            if followed is not None:
                result, abstain = followed, False
        elif not abstain and not has_chinese(question):
            # No Chinese at all (markup, codes, English): the notice cannot be what answers it.
            abstain = True
        debug = {"features": features, "hits": [_hit_debug(h, self.retriever, result) for h in result.hits],
                 "follow_up": followed is not None}
        if abstain:
            return self.abstention(question, result, debug)
        numeric = bool(_NUMERIC_RE.search(result.query.normalized))
        citations = []
        top = result.hits[0]
        for rank, hit in enumerate(result.hits[: self.max_citations]):
            if rank > 0 and not self._also_answers(hit, top, quote_basis):
                continue
            spans = self._pick_sentences(hit.chunk, quote_basis, numeric, limit=self.max_sentences if rank == 0 else 2)
            citations.append(self._citation(hit, spans))
        first = citations[0]
        text = f"根据通报{_cite_label(first)}：{first.quote}"
        if len(citations) > 1:
            others = "；".join(_cite_label(c) for c in citations[1:])
            text += f"\n另见{others}。"
        return Answer(question, text, False, citations, self.related_suggestions(top.chunk.anchor),
                      kind="search", debug=debug)

    def _follow_up(self, question: str, context: dict) -> SearchResult | None:
        """Search a short follow-up ("连南那边呢？") among the items of the topic last talked about.

        The question alone is ranked, restricted to that topic's items: "那经费怎么用的？" after
        第23条 moves on to 第24条 (使用工会经费), while "连南那边呢？" after 第16条 stays there,
        the last item winning ties. A follow-up refines the subject; it does not change it.
        """
        notice, _ = self.primary()
        last = notice.find(context.get("last_item") or "")
        if last is None:
            return None
        group = next((t for t in notice.topics() if last in t.children), None)
        allowed = {c.anchor for c in group.children} if group else {last.anchor}
        result = self.retriever.search_full(question, top_k=len(self.retriever.chunks))
        hits = [h for h in result.hits if h.chunk.anchor.split("-p")[0] in allowed]
        if not hits:
            return None
        # The last item keeps the floor unless another is clearly better (fused score over 15 %
        # higher): "连南那边呢？" after 应急广播 stays there though 连南 also builds a sports centre.
        best = hits[0].score
        hits.sort(key=lambda h: -(h.score + (FOLLOW_UP_MARGIN * best if h.chunk.anchor.split("-p")[0] == last.anchor else 0)))
        result.hits = hits[:5]
        return result

    def _also_answers(self, hit, top, basis: SearchResult) -> bool:
        # A second passage is cited only when it is nearly as good on both views, judged on the
        # question itself (not on a follow-up's widened query).
        position = self.retriever.chunk_position
        best = basis.best_sentence
        return (
            hit.score >= 0.8 * top.score
            and best[position[hit.chunk.id]] >= best[position[top.chunk.id]] - 0.015
            and hit.chunk.anchor.split("-p")[0] != top.chunk.anchor.split("-p")[0]
        )

    def _pick_sentences(self, chunk, result: SearchResult, numeric: bool, limit: int) -> list[tuple[int, int]]:
        rows = self.retriever.rows_by_chunk.get(chunk.id, [])
        if not rows:
            return [(chunk.start, chunk.end)]
        q_bigrams = set(result.query.bigrams)
        scored = []
        for row in rows:
            text = self.retriever.sentence_text(row)
            sim = float(result.sentence_sims[row])
            overlap = len(q_bigrams & set(bigrams(text))) / max(1, len(q_bigrams))
            score = sim + 0.08 * overlap
            if numeric and _DIGIT_RE.search(text):
                score += 0.03
            if len(text) < 14:  # a bare point label such as "三是加强警示教育。"
                score -= 0.02
            scored.append((score, row))
        scored.sort(reverse=True)
        best_score = scored[0][0]
        chosen = [scored[0][1]]
        for score, row in scored[1:]:
            if len(chosen) >= limit:
                break
            if score >= best_score - 0.02:
                chosen.append(row)
        # A short label sentence ("三是加强警示教育。") is not an answer on its own: add what follows.
        extra = []
        for row in chosen:
            text = self.retriever.sentence_text(row)
            if len(text) < 14 and row + 1 in rows and row + 1 not in chosen:
                extra.append(row + 1)
        chosen = sorted(set(chosen + extra))
        return [tuple(self.retriever.sentence_rows[r][1:]) for r in chosen]

    def _citation(self, hit, spans: list[tuple[int, int]]) -> Citation:
        chunk = hit.chunk
        notice = self.retriever.library.notices[chunk.doc]
        quote = _join_quotes(notice.text, spans)
        return Citation(
            doc=chunk.doc, number=chunk.number if chunk.kind == "item" else "", heading=chunk.heading,
            path=chunk.path, anchor=chunk.anchor.split("-p")[0] if chunk.kind == "item" else chunk.anchor,
            passage=chunk.text, quote=quote, score=hit.score, title=chunk.title, quote_spans=list(spans),
        )

    def _citation_for_node(self, node: Node, body: str, rel_spans, score: float) -> Citation:
        notice, _ = self.primary()
        start = notice.text.index(body, node.start)
        spans = [(start + s, start + e) for s, e in rel_spans]
        return Citation(
            doc=notice.doc, number=node.number if node.kind == "item" else "", heading=node.heading,
            path=node.path, anchor=node.anchor, passage=body, quote=body, score=score,
            title=f"第{node.number}条 {node.heading}" if node.kind == "item" else node.heading, quote_spans=spans,
        )

    def abstention(self, question: str, result: SearchResult | None = None, debug: dict | None = None) -> Answer:
        """The plain "the notice does not cover this" reply, with contact details and suggestions."""
        _, meta = self.primary()
        text = (
            f"抱歉，{meta.full_title}中没有涉及您问的内容，我无法据此回答。"
            f"如有意见建议，欢迎联系：{self.contact_line()}。您也可以试试下面的问题。"
        )
        suggestions = self.default_suggestions()
        if result is not None:
            near = [h.chunk for h in result.hits if h.chunk.kind == "item"][:2]
            notice, _ = self.primary()
            near_items = [notice.find(c.anchor.split("-p")[0]) for c in near]
            suggestions = _dedupe([_question_for(n) for n in near_items if n] + suggestions)[:3]
        return Answer(question, text, True, [], suggestions, kind="abstain", debug=debug or {})

    # ---- suggestions ------------------------------------------------------------------------

    def default_suggestions(self) -> list[str]:
        """Three questions the notice answers well (shown after a greeting or an abstention)."""
        return list(WELCOME_SUGGESTIONS[:3])

    def welcome_suggestions(self) -> list[str]:
        """The widget's opening chips: questions the notice answers, each kind once."""
        return list(WELCOME_SUGGESTIONS)

    def related_suggestions(self, anchor: str) -> list[str]:
        """2–3 questions about the items next to the one just answered (same topic first)."""
        notice, _ = self.primary()
        base = anchor.split("-p")[0]
        items = notice.items()
        index = next((i for i, it in enumerate(items) if it.anchor == base), None)
        if index is None:
            return self.default_suggestions()[:3]
        topic = next(t for t in notice.topics() if items[index] in t.children)
        siblings = [it for it in topic.children if it.kind == "item" and it.anchor != base]
        neighbours = siblings + [items[j] for j in (index + 1, index - 1) if 0 <= j < len(items)]
        out = _dedupe([_question_for(it) for it in neighbours if it.anchor != base])
        return out[:3]


# ---- helpers ---------------------------------------------------------------------------------


def _is_follow_up(question: str, features: dict) -> bool:
    """A short question that names no subject of its own: "连南那边呢？", "那经费怎么用的？"."""
    q = normalize(question)
    short = len(q) <= 14
    cue = bool(re.search(r"(呢[？?]?$|那边|那里|这个|那个|^那|^还有|另外|其他的?|这方面|怎么用的|怎么样了)", q))
    return short and (cue or features.get("coverage", 1) < 0.5)


def _body(notice, item: Node) -> str:
    start = item.body_start if item.body_start >= item.start else item.start
    return notice.text[start : item.end].strip()


def _topic_of(notice, item: Node) -> str:
    topic = next((t for t in notice.topics() if item in t.children), None)
    return f"“{topic.label}{topic.heading}”" if topic else "通报"


def _join_quotes(text: str, spans: list[tuple[int, int]]) -> str:
    out = []
    prev_end = None
    for s, e in spans:
        piece = text[s:e].strip()
        if prev_end is not None and s > prev_end and text[prev_end:s].strip():
            out.append("……")
        out.append(piece)
        prev_end = e
    return "".join(out)


def _cite_label(c: Citation) -> str:
    if c.number:
        return f"第{c.number}条“{c.heading}”"
    return f"“{c.heading}”部分"


def _question_for(item: Node) -> str:
    # "第13条…" is answered from the structure (the whole item), so a suggestion never misfires.
    return f"第{item.number}条“{item.heading}”进展如何？"


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _hit_debug(hit, retriever, result) -> dict:
    nearest = retriever.nearest_labelled(result, hit.chunk)
    return {
        "anchor": hit.chunk.anchor,
        "title": hit.chunk.title,
        "fused": round(hit.score, 4),
        "ranks": hit.ranks,
        "scores": {k: round(v, 4) for k, v in hit.scores.items()},
        # Why the labelled questions voted (or not): the nearest one labelled with this passage.
        "labelled": {"question": nearest[0], "similarity": round(nearest[1], 4)} if nearest else None,
    }
