"""Answers to a turn about the last passage: 还有呢, 那连南呢, 那经费呢, 几时能建好.

:class:`bot.turns.TurnReader` says how a turn stands to the conversation; these answer it from
the passage last talked about (or its topic), and say plainly when that passage does not cover
what was asked, never quoting another place's sentence as if it answered.
"""

from __future__ import annotations

import re

from bot.citations import Answer, Citation, join_quotes as _join_quotes, node_label as _node_label
from bot.citations import node_title as _node_title, quoted_sentences
from bot.scope import ask_subject, asks_name, knows, main_clause, type_unmet, vocabulary_of
from bot.turns import Context, Reading, base_anchor as _base_anchor
from index.text import has_chinese, normalize
from knowledge.parser import Node
from knowledge.questions import anchor_matches

# In a follow-up ranked among the last topic's passages, the last one keeps the floor unless
# another scores this much higher (a share of the best fused score).
FOLLOW_UP_MARGIN = 0.15
_ASK_RE = re.compile(r"[几多哪啥咋谁]|什么|怎么|如何|有没有|是不是|吗")
# Signals that judge a whole question, not a follow-up's fragment: a label is on a whole question.
_WHOLE_QUESTION_SIGNALS = ("labelled_declined",)


class FollowUps:
    """Answer follow-ups for an :class:`bot.answer.Answerer` (its retriever, reader, scope policy
    and composer).

    :param answerer: the answerer whose conversations these are.
    """

    def __init__(self, answerer) -> None:
        self.answerer = answerer

    def answer(self, question: str, reading: Reading, context: Context) -> Answer | None:
        """A turn about the last subject, or ``None`` when it is to be read on its own after all."""
        notice = self.answerer.notice_or_first(context.doc)[0]
        last = notice.find(context.anchor or "")
        rows = self.passage_rows(notice.doc, context.anchor or "")
        if last is None or not rows:
            return None
        label = _node_label(last)
        turn = {"follow_up": True, "reading": reading.to_dict(), "of": {"question": context.question,
                                                                         "anchor": last.anchor, "label": label}}
        if reading.kind == "more":
            return self._more_of(question, notice, last, rows, context, turn)
        if reading.kind == "ask":
            asked = self.ask_of(question, notice, last, rows, context, turn)
            # A tentative reading (谁来检查: no cue, only common words) stands only where the last
            # passage answers it; otherwise the turn is read on its own.
            return None if reading.tentative and asked.abstained else asked
        if reading.kind == "place":
            return self._in_place(question, notice, last, rows, reading.places, context, turn)
        return self._refine(question, notice, last, reading, context, turn)

    def passage_rows(self, doc: str, anchor: str) -> list[int]:
        """The sentence rows of a passage (every piece of a split item), in notice order."""
        retriever = self.answerer.retriever
        rows = [row for chunk in retriever.chunks if chunk.doc == doc and _base_anchor(chunk) == anchor
                for row in retriever.rows_by_chunk.get(chunk.id, [])]
        return sorted(rows, key=lambda r: retriever.sentence_rows[r][1])

    def _rows_citation(self, notice, node: Node, rows: list[int], score: float = 1.0) -> Citation:
        spans = [tuple(self.answerer.retriever.sentence_rows[r][1:]) for r in rows]
        quote = _join_quotes(notice.text, spans)
        return Citation(doc=notice.doc, number=node.number if node.kind == "item" else "", heading=node.heading,
                        path=node.path, anchor=node.anchor, passage=notice.text[node.start:node.end].strip(),
                        quote=quote, score=score, title=_node_title(node), quote_spans=spans,
                        notice=self.answerer.notice_title(notice.doc), quotes=quoted_sentences(notice.text, spans))

    def _more_of(self, question, notice, last: Node, rows: list[int], context: Context, turn: dict) -> Answer:
        """还有呢 / 具体说说: the passage's sentences not quoted yet, or the whole passage."""
        quoted = [tuple(q) for q in context.quoted]
        fresh = [r for r in rows if not any(s < qe and qs < e for qs, qe in quoted
                                            for s, e in [self.answerer.retriever.sentence_rows[r][1:]])]
        label = _node_label(last)
        turn.update(searched=f"（不检索）{label}中尚未引用的句子", abstain=False, decided_by="追问上一条的更多内容")
        if fresh:
            citation = self._rows_citation(notice, last, fresh[: self.answerer.max_sentences])
            text = f"{self.answerer.notice_title(notice.doc)}{label}还写道：{citation.quote}"
        else:
            citation = self._rows_citation(notice, last, rows)
            text = f"{self.answerer.notice_title(notice.doc)}{label}的内容已经全部列出，全文如下：{citation.quote}"
        return Answer(question, text, False, [citation], self.answerer.related_suggestions(last.anchor, notice.doc), kind="search",
                      debug={"follow_up": True, "turn": turn})

    def place_not_in(self, question: str, chunk) -> str:
        """A place of the issuers' area the question names and the passage found never does (its
        own city is no such place: 全市 is 清远市)."""
        issuers = " ".join(self.answerer.retriever.issuers)
        for place in self.answerer.reader.places(question):
            core = _place_core(place)
            if core in issuers or not any(core in a or a in place for a in self.answerer.retriever.area):
                continue
            if not any(v in chunk.text for v in self._place_variants(place)):
                return place
        return ""

    def _place_variants(self, place: str) -> list[str]:
        """连南 → 连南, 连南瑶族自治县, 连南县: the ways the notices write one place."""
        core = _place_core(place)
        found = [place, core] + [a for a in self.answerer.retriever.area if a.startswith(core)]
        return list(dict.fromkeys(v for v in found if len(v) >= 2))

    def _in_place(self, question, notice, last: Node, rows: list[int], places: list[str], context: Context,
                  turn: dict) -> Answer:
        """那连南呢？: the last passage's sentences about that place, or a plain "it does not say"."""
        retriever = self.answerer.retriever
        place = places[0]
        variants = self._place_variants(place)
        # Only the passage talked about: another passage naming the place is about something else
        # (第5条 names 连州 and 连山 for its villages, not for 第4条's toilets).
        about = [r for r in rows if any(v in retriever.sentence_text(r) for v in variants)]
        ask = main_clause(normalize(question))
        if not _ASK_RE.search(ask) and context.question:
            ask = main_clause(normalize(context.question))  # 那连南呢 after 建了多少座 asks how many there
        label = _node_label(last)
        turn.update(searched=f"（不检索）{label}中提到{place}的句子", ask=ask)
        if about and not type_unmet(ask, "。".join(retriever.sentence_text(r) for r in about), tuple(variants),
                                    retriever.area, vocabulary_of(retriever)):
            turn.update(abstain=False, decided_by=f"{label}写到了{place}")
            citation = self._rows_citation(notice, last, about[: self.answerer.max_sentences])
            text = f"根据{self.answerer.notice_title(notice.doc)}{label}，关于{place}：{citation.quote}"
            return Answer(question, text, False, [citation], self.answerer.related_suggestions(last.anchor, notice.doc), kind="search",
                          debug={"follow_up": True, "turn": turn})
        turn.update(abstain=True, decided_by=f"{label}没有写到{place}" if not about else f"{label}没有说明{place}的这一点")
        return self.not_covered(question, notice, last, rows, f"{place}的相关情况", turn, place)

    def ask_of(self, question, notice, last: Node, rows: list[int], context: Context, turn: dict) -> Answer:
        """都在哪几个地方 / 测了多少人呢: the turn's ask, of the last passage. Its sentences are ranked
        by the last question and the turn together; the kind of fact asked must be there."""
        retriever = self.answerer.retriever
        searched = f"{context.question or last.heading} {question}"
        result = retriever.search_full(searched, top_k=1)
        ask = main_clause(normalize(question))
        passage = "。".join(retriever.sentence_text(r) for r in rows)
        # What the ask is about: its own words that the passage speaks of (引进了几个人 after 人才引进呢:
        # a count of those recruited, not the 9个 units of another sentence), else the last question's.
        own = tuple(w for w in ask_subject(ask, retriever.synonyms) if w in passage)
        subject = own or tuple(retriever.specific_words(context.question or last.heading))
        label = _node_label(last)
        turn.update(searched=searched, within=[last.anchor], ask=ask)
        # The decisive signals, as on a whole question: 几点开门 asks for a service, 局长叫什么 a name.
        _, features = self.answerer.policy.decide(result, retriever)
        unmet = type_unmet(ask, passage, subject, retriever.area, vocabulary_of(retriever)) or asks_name(ask)
        decisive = [f for f in features.get("decisive", []) if f != "type_unmet" and f not in _WHOLE_QUESTION_SIGNALS]
        if unmet or decisive or not has_chinese(question):
            turn.update(abstain=True, decided_by=f"{label}没有写到所问的这类内容" if unmet else
                        "决定性信号：" + "、".join(decisive))
            return self.not_covered(question, notice, last, rows, "这一点", turn)
        ranked = sorted(rows, key=lambda r: -float(result.sentence_sims[r]))
        chosen = sorted(ranked[: self.answerer.max_sentences], key=lambda r: retriever.sentence_rows[r][1])
        turn.update(abstain=False, decided_by=f"追问{label}")
        citation = self._rows_citation(notice, last, chosen)
        text = f"根据{self.answerer.notice_title(notice.doc)}{label}：{citation.quote}"
        return Answer(question, text, False, [citation], self.answerer.related_suggestions(last.anchor, notice.doc), kind="search",
                      debug={"follow_up": True, "turn": turn})

    def not_covered(self, question: str, notice, node: Node, rows: list[int], what: str, turn: dict,
                    place: str = "") -> Answer:
        """The passage talked about does not say ``what`` was asked (连南的相关情况, 这一点): say so,
        show what it does say (as what it says, never as the answer) and give the contact."""
        summary = next((self.answerer.retriever.sentence_text(r) for r in rows if len(self.answerer.retriever.sentence_text(r)) >= 14),
                       self.answerer.retriever.sentence_text(rows[0]))
        label = _node_label(node)
        text = (f"{self.answerer.notice_title(notice.doc)}{label}没有{'单独' if place else ''}说明{what}，我无法据此回答。这一条写的是：{summary.strip()}"
                f"如需了解{place or '更多'}的具体情况，欢迎联系：{self.answerer.contact_line(notice.doc)}。")
        return Answer(question, text, True, [], self.answerer.related_suggestions(node.anchor, notice.doc), kind="not_covered",
                      debug={"follow_up": turn.get("follow_up", False), "turn": turn}, about=(notice.doc, node.anchor))

    def narrowed_away(self, question: str, reading: Reading, context: Context, answer: Answer) -> Answer | None:
        """A refining turn read on its own that lands back on the last passage, which does not
        speak of what the turn adds (那博物馆党支部呢 after 图书馆党支部, 小型的演出也要报吗 after
        大型演出): the notice does not say it; ``None`` when the answer stands."""
        if reading.kind != "refine" or answer.abstained or not answer.citations:
            return None
        top = answer.citations[0]
        if top.doc != context.doc or not anchor_matches(top.anchor, [context.anchor or ""]):
            return None
        retriever = self.answerer.retriever
        notice = self.answerer.library.notices.get(context.doc or "")
        last = notice.find(context.anchor or "") if notice else None
        if last is None:
            return None
        passage = self.answerer.reader.passage_text(context)
        specific = set(retriever.specific_words(" ".join(reading.adds)))
        missing = [w for w in reading.adds
                   if not knows(w, retriever.vocabulary_text, retriever.synonyms) or (w in specific and w not in passage)]
        if not missing:
            return None
        label = _node_label(last)
        turn = {"follow_up": True, "reading": reading.to_dict(),
                "of": {"question": context.question, "anchor": last.anchor, "label": label},
                "searched": question, "abstain": True, "decided_by": f"{label}没有写到{'、'.join(missing)}"}
        return self.not_covered(question, notice, last, self.passage_rows(notice.doc, last.anchor),
                                f"{'、'.join(missing)}的情况", turn)

    def _group(self, notice, node: Node) -> set[str]:
        """The anchors of ``node`` and its siblings (the items of its topic, the points of part 一)."""
        parent = next((n for n in notice.walk() if node in n.children), None)
        siblings = [c for c in parent.children if c.kind == node.kind] if parent and node.kind != "contact" else [node]
        return {c.anchor for c in siblings} | {node.anchor}

    def _refine(self, question, notice, last: Node, reading: Reading, context: Context, turn: dict) -> Answer | None:
        """那经费怎么用的？: rank the turn among the last topic's passages (the last one winning ties).
        A turn that adds words the notices never use, or a subject of another topic, is read on
        its own (``None``): 那天气呢 is declined as 天气 would be."""
        retriever = self.answerer.retriever
        unknown = [w for w in reading.adds if not knows(w, retriever.vocabulary_text, retriever.synonyms)]
        group = self._group(notice, last)
        group_chunks = [c for c in retriever.chunks if c.doc == notice.doc and _base_anchor(c) in group]
        group_text = " ".join(retriever.passage_words(c) for c in group_chunks)
        elsewhere = [w for w in retriever.specific_words(" ".join(reading.adds)) if w not in group_text]
        if unknown or elsewhere:
            return None
        result = retriever.search_full(question, top_k=len(retriever.chunks))
        hits = [h for h in result.hits if h.chunk.doc == notice.doc and _base_anchor(h.chunk) in group]
        if not hits:
            return None
        # A turn adding only words the last passage uses is about that passage (具体怎么检查 after
        # 第15条, which 检查s in three ways, is not about 第14条's 监测), unless another passage of
        # the topic is headed by them (那经费怎么用的 after 会员费 is 工会经费's own item).
        # (Its own words: the topic heading it shares with its siblings does not count.)
        adds = [normalize(w) for w in reading.adds]
        last_words = normalize(" ".join(f"{c.title} {c.text} {' '.join(retriever.aliases(c))}"
                                        for c in group_chunks if _base_anchor(c) == last.anchor))
        headed_elsewhere = any(w in normalize(c.title) for c in group_chunks if _base_anchor(c) != last.anchor
                               for w in adds)
        if adds and all(w in last_words for w in adds) and not headed_elsewhere:
            hits = [h for h in hits if _base_anchor(h.chunk) == last.anchor] or hits
        # "连南那边呢？" after 应急广播 stays there though 连南 also builds a sports centre.
        best = hits[0].score
        hits.sort(key=lambda h: -(h.score + (FOLLOW_UP_MARGIN * best if _base_anchor(h.chunk) == last.anchor else 0)))
        result.hits = hits[:5]
        top = result.hits[0]
        # What singles out a few passages must be in the one found (措施 or 检查 are everywhere).
        specific = set(retriever.specific_words(" ".join(reading.adds)))
        absent = [w for w in reading.adds if w in specific and w not in retriever.passage_words(top.chunk)]
        if absent:
            # 那因公出国呢 after 因私出国: the passage found does not speak of 因公 at all.
            node = notice.find(_base_anchor(top.chunk)) or last
            turn.update(searched=question, within=sorted(group), abstain=True,
                        decided_by=f"{_node_label(node)}没有写到{'、'.join(absent)}")
            return self.not_covered(question, notice, node, self.passage_rows(notice.doc, node.anchor),
                                    f"{'、'.join(absent)}的情况", turn)
        if reading.places and _base_anchor(top.chunk) == last.anchor:
            # 那连南要啥时候才升级好: the last passage, in that place: its sentences about it must say
            return self._in_place(question, notice, last, self.passage_rows(notice.doc, last.anchor),
                                  reading.places, context, turn)
        if reading.places:
            variants = [v for p in reading.places for v in self._place_variants(p)]
            if not any(v in top.chunk.text for v in variants):
                node = notice.find(_base_anchor(top.chunk)) or last
                turn.update(searched=question, abstain=True, decided_by=f"{_node_label(node)}没有写到{reading.places[0]}")
                return self.not_covered(question, notice, node, self.passage_rows(notice.doc, node.anchor),
                                        f"{reading.places[0]}的相关情况", turn, reading.places[0])
        # In a follow-up the learnt model (trained on whole questions) does not apply to a
        # fragment; the decisive signals do: 那怎么报名呢 is a personal service, 那公安局呢 another
        # office, 那有多少钱呢 a sum the passage must state.
        _, features = self.answerer.policy.decide(result, retriever)
        decisive = [f for f in features.get("decisive", []) if f not in _WHOLE_QUESTION_SIGNALS]
        features["decisive"] = decisive
        abstain = bool(decisive)
        turn.update(searched=question, within=sorted(group), abstain=abstain,
                    decided_by=("决定性信号：" + "、".join(features["decisive"])) if abstain else "在上一话题的条目中找到")
        return self.answerer._compose(question, result, result, abstain, features, turn)



_LEVEL_SUFFIX_RE = re.compile(r"(市|县|区|镇|乡|村)$")


def _place_core(place: str) -> str:
    """A place without its level: 连南县 → 连南 (the notices write 连南, 连南县, 连南瑶族自治县)."""
    return _LEVEL_SUFFIX_RE.sub("", place) or place
