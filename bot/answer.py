"""Extractive answers with citations, and honest abstention.

Every sentence an answer shows is a slice of a published notice: the composer picks 1–3
sentences of the passages that really answer, names the item they come from, and abstains
(with the notice's phone and e-mail) when nothing does. Structure questions ("整改了哪些方面",
"第十六条") are answered from the parsed structure, not from search.
"""

from __future__ import annotations

import re
from index.chunking import passage_anchor
from index.search import Retriever, SearchResult
from index.text import bigrams, condense, has_chinese, normalize, words
from bot.citations import Answer, Citation, cite_label as _cite_label, join_quotes as _join_quotes
from bot.citations import node_label as _node_label, quoted_sentences, short_title
from bot.constants import INTENT_ASK_CONTACT, INTENT_COMPLAIN, INTENT_REQUEST_HUMAN, UTTER_OUT_OF_SCOPE
from bot.itemref import parse_item_number
from bot.nlu import asks_for_contact, load_examples
from bot.replies import load_domain, render
from bot.scope import abbreviates, foreign_names, knows, main_clause
from bot.followups import FollowUps
from bot.turns import Context, Reading, TurnReader, base_anchor as _base_anchor
from knowledge.parser import Node
from knowledge.questions import anchor_matches

MAX_QUESTION_CHARS = 500
# A fused search score (1 = first for every passage ranker; a close labelled question adds up to
# its weight on top) at which the search's choice is firm.
FIRM_SEARCH_SCORE = 0.8
# Asks for a fact or a yes/no, which the list of topics does not answer.
_ASKS_FOR_CHANNELS = (INTENT_ASK_CONTACT, INTENT_REQUEST_HUMAN, INTENT_COMPLAIN)
# The parts of a notice every notice of the genre has, which answer alike whichever notice is meant.
_SHARED_PARTS = ("preamble", "contact")
_SPECIFIC_ASK_RE = re.compile(r"谁|什么时候|何时|哪天|哪年|是不是|会不会|为啥|为什么|有没有")
# Yes/no: 还能用私人邮箱吗 asks whether, not for an address.
_YES_NO_RE = re.compile(r"吗[？?。！!]*$|能不能|可不可以|是不是|有没有|行不行")

_OVERVIEW_RE = re.compile(
    r"(整改了?哪些方面|哪[几些]个方面|几个方面|多少个方面|主要内容|有哪些整改任务|整改任务有哪些|"
    r"(?:一共|总共|共有|通报有|通报共)多少条|内容概要|概况|目录|大纲|"
    r"(?:通报|文件|公告|这份|这个)\S{0,4}(?:讲|说)了?(?:些)?(?:什么|啥))"
)
_NUMERIC_RE = re.compile(r"(多少|几[个座条家名项次年月日号人所处]?|哪一?年|哪天|什么时候|何时|时间|日期|比例|百分之|比率|数量|规模)")
_DIGIT_RE = re.compile(r"\d|[一二三四五六七八九十百千万]+[个座条家名项批]")


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
            from bot.nlu import classifier_for
            from bot.scope import ScopePolicy

            policy = ScopePolicy(classifier_for(retriever))
        self.policy = policy
        self.reader = TurnReader(retriever)
        self.follow_ups = FollowUps(self)
        self._overview_words: set[str] | None = None
        self._contact_words: dict[str, str] = {}

    def warm_up(self) -> None:
        self.retriever.warm_up()
        self.policy.warm_up(self.retriever)

    # ---- the notice, as a citizen sees it ----------------------------------------------------

    @property
    def library(self):
        self.retriever.warm_up()
        return self.retriever.library

    def notice_for(self, doc: str | None = None):
        """``(notice, meta)`` of ``doc``; of the only notice when one is loaded; else ``None``
        (several notices, none chosen yet)."""
        library = self.library
        if doc and doc in library.notices:
            return library.notices[doc], library.meta[doc]
        if len(library.notices) == 1:
            only = next(iter(library.notices))
            return library.notices[only], library.meta[only]
        return None

    def resolve_doc(self, question: str, context: Context | None = None, page: str | None = None) -> str | None:
        """Which notice a turn is about, in order: the page the widget is on (``metadata.doc``),
        the notice the question names (its issuer, a short form of it, its city or area), the
        notice of the conversation so far; ``None`` when several are loaded and none is chosen."""
        library = self.library
        if page and page in library.notices:
            return page
        named = self.named_docs(question, area=False)
        if len(named) == 1:
            return named[0]
        if context is not None and context.doc in library.notices:
            return context.doc  # 那连南呢 stays with the notice talked about
        named = self.named_docs(question)
        if len(named) == 1:
            return named[0]
        if len(library.notices) == 1:
            return next(iter(library.notices))
        return None

    def named_docs(self, question: str, area: bool = True) -> list[str]:
        """The notices whose issuer the question names: in full, by a short form of its office
        (卫健局 for 卫生健康局), by its city (河西) or by a place of its area, when that singles
        them out."""
        library = self.library
        if len(library.notices) < 2:
            return []
        text = normalize(question)
        offices = [_short_office(o) for o in _OFFICE_NAME_RE.findall(text)]
        by_issuer, by_area = [], []
        for doc, meta in library.meta.items():
            issuer = _issuer_name(meta.issuer)
            place = _issuer_place(issuer)
            if (issuer in text or any(abbreviates(o, issuer) for o in offices)
                    or (place and place in text)):
                by_issuer.append(doc)
            elif any(a in text for a in meta.area if len(a) >= 2):
                by_area.append(doc)
        return by_issuer if not area else by_issuer or by_area

    def notice_or_first(self, doc: str | None):
        """The notice a structure answer is about, or the first (callers ask which when several
        are loaded and none is chosen)."""
        chosen = self.notice_for(doc)
        if chosen is not None:
            return chosen
        first = next(iter(self.library.notices))
        return self.library.notices[first], self.library.meta[first]

    def notice_title(self, doc: str | None) -> str:
        """《关于…的通报》 of ``doc``, as a reply names its source; "通报" when none is chosen."""
        chosen = self.notice_for(doc)
        return short_title(chosen[1].title) if chosen else "通报"

    def contact_line(self, doc: str | None = None) -> str:
        """The notice's phone and e-mail, one line; every notice's, by issuer, when none is chosen."""
        chosen = self.notice_for(doc)
        if chosen is None:
            return "；".join(f"{_issuer_name(self.library.meta[d].issuer)}：{_phone_and_email(n.contact)}"
                            for d, n in self.library.notices.items())
        return _phone_and_email(chosen[0].contact)

    def channels(self, doc: str | None = None) -> dict:
        """The notice's own supervision channels, exactly as it states them (for the complaint
        and hand-off replies of ``domain.yml``): ``channels`` (one line), ``issuer``, ``title``.
        With several notices and none chosen: each issuer's."""
        chosen = self.notice_for(doc)
        if chosen is None:
            library = self.library
            lines = [f"{_issuer_name(library.meta[d].issuer)}：{_channels_of(n.contact)}" for d, n in library.notices.items()]
            return {"channels": "；".join(lines), "issuer": "各发布单位",
                    "title": "、".join(m.full_title for m in library.meta.values())}
        notice, meta = chosen
        return {"channels": _channels_of(notice.contact) or "请通过通报公布的渠道", "issuer": _issuer_name(meta.issuer),
                "title": meta.full_title}

    def choose_notice(self, question: str, ask: str | None = None) -> Answer:
        """Several notices could answer (第3条, 联系电话, 巡察组是什么时候来的) and none is chosen: ask
        which, each choice a button that names its issuer. ``ask`` names what is asked for (第3条);
        without it the button is the issuer and the question itself."""
        library = self.library
        if ask:
            buttons = [f"{_issuer_name(meta.issuer)}{ask}" for meta in library.meta.values()]
            which = f"哪一份的{ask}"
        else:
            asked = question.strip().rstrip("？?。.!！")
            buttons = [f"{_issuer_name(meta.issuer)}：{asked}？" for meta in library.meta.values()]
            which = "哪一份通报"
        titles = "；".join(meta.full_title for meta in library.meta.values())
        text = f"本站公开了{len(buttons)}份整改通报：{titles}。请问您想了解{which}？请点下面的选项。"
        return Answer(question, text, False, [], buttons, kind="choose_notice")

    # ---- entry point ------------------------------------------------------------------------

    def answer(self, question: str, context: Context | dict | None = None, page: str | None = None) -> Answer:
        """Answer one turn of a conversation.

        :param question: what the citizen typed.
        :param context: what the conversation answered last (:class:`bot.turns.Context`); a
            follow-up (那连南呢？, 还有呢) is read against it, anything else on its own.
        :param page: the notice of the page the widget is on (``metadata.doc``): answered from
            first, as the contact, the overview and items by number are.
        :returns: the :class:`Answer` (``abstained`` when the notice does not answer); its
            ``debug["turn"]`` says how the turn was read, what was searched and what decided.
        """
        question = (question or "").strip()
        context = _as_context(context)
        if not question:
            example = (self.default_suggestions(page) or ["整改了哪些方面？"])[0]
            return Answer(question, f"请输入您想了解的问题，例如“{example}”。", False, kind="empty",
                          suggestions=self.default_suggestions(page))
        question = condense(question[:MAX_QUESTION_CHARS])
        doc = self.resolve_doc(question, context, page)
        number = parse_item_number(question)
        if number is not None:
            return self.item_answer(number, question, doc)
        if context is not None and context.doc and doc and doc != context.doc:
            context = None  # the turn names another notice: nothing of the last one carries over
        reading = self.reader.read(question, context)
        if reading.follow_up:
            followed = self.follow_ups.answer(question, reading, context)
            if followed is not None:
                return followed
        topic = self._topic_named(question, doc)
        if topic is not None:
            return self.topic_answer(question, *topic)
        if _OVERVIEW_RE.search(main_clause(normalize(question))) and not self.names_a_subject(question):
            return self.overview(question, doc)
        answer = self.search_answer(question, reading=reading, doc=doc)
        narrowed = self.follow_ups.narrowed_away(question, reading, context, answer) if reading.follow_up else None
        if narrowed is not None:
            return narrowed
        declined_here = answer.abstained and not answer.debug.get("features", {}).get("decisive")
        if (declined_here or self._moved_away(question, context, answer)) and self.reader.names_only_the_last(
                question, context):
            # On its own the learnt model declines 发了什么文件; after 第3条, whose passage names
            # everything the turn does, it asks about that passage.
            notice = self.notice_or_first(context.doc)[0]
            last = notice.find(context.anchor or "")
            if last is not None:
                turn = {"follow_up": True, "reading": {"kind": "ask", "places": [], "adds": [], "cue": ""},
                        "of": {"question": context.question, "anchor": last.anchor, "label": _node_label(last)},
                        "note": "单独看不回答；所问的都在上一条里，按追问处理"}
                followed = self.follow_ups.ask_of(question, notice, last, self.follow_ups.passage_rows(notice.doc, last.anchor),
                                        context, turn)
                if not followed.abstained:
                    return followed
        return answer

    def _moved_away(self, question: str, context: Context | None, answer: Answer) -> bool:
        """Whether a turn searched on its own left the passage just shown though it names something
        specific that passage speaks of (有没有建台账 after 第17条, which keeps a 隐患排查台账, found
        part 一's 台账推进); not when the passage found is headed by it: that is a new topic
        (意识形态工作责任制落实了些啥 after a passage that mentions it in passing)."""
        if (answer.abstained or not answer.citations or context is None or not context.usable
                or anchor_matches(answer.citations[0].anchor, [context.anchor or ""])):
            return False
        specific = self.retriever.specific_words(question)
        heading = normalize(answer.citations[0].heading)
        if not specific or any(w in heading for w in specific):
            return False
        passage = self.reader.passage_text(context)
        return any(w in passage for w in specific)

    def contact_or_answer(self, question: str, context: Context | None = None, page: str | None = None) -> Answer:
        """The contact paragraph, unless the question asks about something else that a passage
        answers: 非遗展馆的预约电话 asks for a phone, but not ours; 上班还能用私人邮箱发文件吗 speaks
        of e-mail, but asks about a rule another passage states."""
        context = _as_context(context)
        doc = self.resolve_doc(question, context, page)
        if self._asks_beyond_contact(self.unnamed(question), doc) or self._reads_as_follow_up(question, context):
            return self.answer(question, context, page)
        return self.contact_answer(question, doc)

    def overview_or_answer(self, question: str, context: Context | None = None, page: str | None = None) -> Answer:
        """The list of topics, unless the question names a subject a few passages are about
        (固定资产管理方面采取了哪些整改措施), another office, or asks who, when or whether (是谁来查的,
        改完是不是就不管了): no list of topics answers those."""
        retriever = self.retriever
        context = _as_context(context)
        rest = self.unnamed(question)
        if (self._reads_as_follow_up(question, context) or self.names_a_subject(rest)
                or _SPECIFIC_ASK_RE.search(main_clause(normalize(question)))
                or foreign_names(question, retriever.vocabulary_text, retriever.synonyms, retriever.issuers)):
            return self.answer(question, context, page)
        return self.overview(question, self.resolve_doc(question, context, page))

    def unnamed(self, question: str) -> str:
        """The question without the names of the notices it names (卫健局整改了哪些方面 → 整改了哪些
        方面): naming a notice chooses it, it is not the subject asked about."""
        if len(self.library.notices) < 2:
            return question
        text = normalize(question)
        for meta in self.library.meta.values():
            issuer = _issuer_name(meta.issuer)
            for name in sorted({meta.issuer, issuer, _issuer_place(issuer)} - {""}, key=len, reverse=True):
                text = text.replace(name, "")
        for office in _OFFICE_NAME_RE.findall(text):
            short = _short_office(office)
            if any(abbreviates(short, _issuer_name(m.issuer)) for m in self.library.meta.values()):
                text = text.replace(short, "")
        return text.strip("的 ") or question

    def _reads_as_follow_up(self, question: str, context) -> bool:
        """邮编呢 after the contact paragraph, 邮箱那个是咋回事 after 第21条: about the last passage."""
        return self.reader.read(question, _as_context(context)).follow_up

    def _asks_beyond_contact(self, question: str, doc: str | None = None) -> bool:
        retriever = self.retriever
        if foreign_names(question, retriever.vocabulary_text, retriever.synonyms, retriever.issuers):
            return True  # 清远市公安局的联系电话 is not this bureau's phone
        notice, _ = self.notice_or_first(doc)
        if notice.doc not in self._contact_words:
            contact = next((c for c in retriever.chunks if c.anchor == "contact" and c.doc == notice.doc), None)
            # The paragraph's words, and those people use to ask for its channels (the NLU
            # examples of contact, hand-off and complaint requests: data, not a list here).
            asked = " ".join(e.text for e in load_examples() if e.intent in _ASKS_FOR_CHANNELS)
            self._contact_words[notice.doc] = (retriever.passage_words(contact) if contact else "") + " " + asked
        contact_words = self._contact_words[notice.doc]
        if any(w not in contact_words for w in retriever.specific_words(question)):
            return True
        if any(w not in contact_words and not knows(w, retriever.vocabulary_text, retriever.synonyms)
               for w in words(question) if len(w) >= 2):
            # 山上着火打哪个电话 names what neither the notice nor a request for its channels
            # speaks of: it asks for someone else's number, and the search says so.
            return True
        if _YES_NO_RE.search(question):
            # 还能用私人邮箱吗 asks whether; the contact paragraph answers it only when no other
            # passage is the search's firm choice (私人邮箱 is 第21条's rule).
            hits = retriever.search(question, top_k=1)
            return bool(hits) and hits[0].chunk.anchor != "contact" and hits[0].score >= FIRM_SEARCH_SCORE
        return False

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

    def item_answer(self, number: int, question: str = "", doc: str | None = None) -> Answer:
        """The numbered item ``number`` of the notice ``doc``, whole, or a polite note that it does
        not exist; which notice's, when several are loaded and none is chosen."""
        chosen = self.notice_for(doc)
        if chosen is None:
            return self.choose_notice(question, f"第{number}条")
        notice, _ = chosen
        item = notice.item(number)
        items = notice.items()
        title = self.notice_title(notice.doc)
        if item is None:
            text = (f"{title}共有{len(items)}条整改任务（第1条至第{len(items)}条），没有第{number}条。"
                    f"您可以输入 1 到 {len(items)} 之间的条目编号查询。")
            # The notice has no such item: nothing answers, as with any question it does not cover.
            return Answer(question, text, True, kind="item", suggestions=self.default_suggestions(notice.doc),
                          doc=notice.doc)
        body = _body(notice, item)
        citation = self._citation_for_node(notice, item, body, [(0, len(body))], 1.0)
        topic = _topic_of(notice, item)
        text = f"{title}第{item.number}条“{item.heading}”" + (f"（属于{topic}）" if topic else "") + f"：{body}"
        return Answer(question, text, False, [citation], self.related_suggestions(item.anchor, notice.doc), kind="item",
                      doc=notice.doc)

    def overview(self, question: str = "", doc: str | None = None) -> Answer:
        """The topics of part 二 with their item ranges (or, ungrouped, its items): what was
        rectified, at a glance."""
        chosen = self.notice_for(doc)
        if chosen is None:
            return self.choose_notice(question, "整改了哪些方面")
        notice, meta = chosen
        lines = []
        for topic in notice.topics():
            numbers = [i.number for i in topic.children if i.kind == "item"]
            if not numbers:
                continue
            span = f"第{numbers[0]}条" if len(numbers) == 1 else f"第{numbers[0]}—{numbers[-1]}条"
            lines.append(f"{topic.label}{topic.heading.removeprefix('关于')}（{span}）")
        items = notice.items()
        if lines:
            head = f"{meta.full_title}从{len(lines)}个方面通报了{len(items)}条整改任务的落实情况：\n"
        else:
            lines = [f"第{i.number}条 {i.heading}" for i in items]
            head = f"{meta.full_title}通报了{len(items)}条整改任务的落实情况：\n"
        text = head + "\n".join(lines) + "\n您可以点一个方面查看其中的整改任务，或直接问具体内容。"
        # Each topic a button that asks about it (its label and heading, read back by _topic_named).
        buttons = [_topic_button(t) for t in notice.topics() if any(i.kind == "item" for i in t.children)]
        return Answer(question, text, False, [], buttons or self.default_suggestions(notice.doc), kind="overview",
                      doc=notice.doc)

    def _topic_named(self, question: str, doc: str | None):
        """``(notice, topic)`` when the question is a topic's button (（三）履行文化建设职能职责工作方面)."""
        text = normalize(question).strip(" ？?。")
        docs = [doc] if doc else list(self.library.notices)
        for d in docs:
            notice = self.library.notices.get(d)
            for topic in (notice.topics() if notice else []):
                if text == normalize(_topic_button(topic)).strip(" ？?。"):
                    return notice, topic
        return None

    def topic_answer(self, question: str, notice, topic: Node) -> Answer:
        """A topic of part 二: its items, each a button that asks about it."""
        items = [i for i in topic.children if i.kind == "item"]
        lines = [f"第{i.number}条 {i.heading}" for i in items]
        text = (f"{self.notice_title(notice.doc)}“{topic.label}{topic.heading}”包括{len(items)}条整改任务：\n"
                + "\n".join(lines) + "\n点下面的问题查看各条的进展。")
        return Answer(question, text, False, [], [_question_for(i) for i in items], kind="topic", doc=notice.doc)

    def contact_answer(self, question: str = "", doc: str | None = None) -> Answer:
        """The closing paragraph: how to give comments, quoted."""
        chosen = self.notice_for(doc)
        if chosen is None:
            return self.choose_notice(question, "联系方式")
        notice, _ = chosen
        node = notice.find("contact")
        if node is None:
            text = f"{self.notice_title(notice.doc)}没有写明意见反映渠道。"
            return Answer(question, text, True, [], self.default_suggestions(notice.doc), kind="contact", doc=notice.doc)
        citation = self._citation_for_node(notice, node, node.text, [(0, len(node.text))], 1.0)
        text = f"根据{self.notice_title(notice.doc)}结尾：{node.text}"
        return Answer(question, text, False, [citation], self.default_suggestions(notice.doc), kind="contact",
                      doc=notice.doc)

    # ---- search answers ---------------------------------------------------------------------

    def search_answer(self, question: str, reading: Reading | None = None, doc: str | None = None) -> Answer:
        """A question read on its own: search the notices, let the scope policy decide. With
        several notices, the one the turn is about (``doc``) is searched first, then all."""
        retriever = self.retriever
        several = len(self.library.notices) > 1
        result = retriever.search_full(question, top_k=5, docs=(doc,) if doc and several else None)
        abstain, features = self.policy.decide(result, retriever)
        searched_in = doc if doc and several else None
        if abstain and several and not features.get("decisive"):
            if searched_in:
                # Not in the notice talked about: another notice may answer it (its title is shown).
                wider = [None]
            else:
                # No notice is known for the turn and the library's best passage does not answer
                # it: each other notice ranked near the top is asked on its own, as on its page.
                top = result.hits[0].chunk.doc
                wider = _dedupe([h.chunk.doc for h in result.hits[1:] if h.chunk.doc != top])
            for other in wider:
                found = retriever.search_full(question, top_k=5, docs=(other,) if other else None)
                found_abstain, found_features = self.policy.decide(found, retriever)
                if not found_abstain:
                    result, abstain, features, searched_in = found, found_abstain, found_features, other
                    break
        if not abstain and several and not doc and self._every_notice_has(result):
            # 这次巡察是什么时候来的 with no notice chosen: each notice's preamble answers it.
            return self.choose_notice(question)
        decided_by = _decided_by(features, abstain)
        if not abstain and not has_chinese(question):
            # No Chinese at all (markup, codes, English): the notice cannot be what answers it.
            abstain, decided_by = True, "没有中文，通报无从回答"
        turn = {"follow_up": False, "searched": result.query.text, "abstain": abstain, "decided_by": decided_by}
        if searched_in:
            turn["notice"] = searched_in
        if not abstain:
            missing = self.follow_ups.place_not_in(question, result.hits[0].chunk)
            if missing:
                # 英德应急广播建了没: 第16条 lists other counties; it is not 英德's answer.
                notice = self.library.notices[result.hits[0].chunk.doc]
                node = notice.find(_base_anchor(result.hits[0].chunk))
                if node is not None:
                    turn.update(abstain=True, decided_by=f"{_node_label(node)}没有写到{missing}")
                    answer = self.follow_ups.not_covered(question, notice, node, self.follow_ups.passage_rows(notice.doc, node.anchor),
                                              f"{missing}的相关情况", turn, missing)
                    answer.debug.update(features=features,
                                        hits=[_hit_debug(h, retriever, result) for h in result.hits])
                    return answer
        if reading is not None and reading.follow_up:
            # Read as a follow-up, but what it adds is nowhere near the last subject: on its own.
            turn["reading"] = reading.to_dict()
            turn["note"] = "像追问，但所问内容不在上一话题之内，按独立问题处理"
        return self._compose(question, result, result, abstain, features, turn, doc)

    def _every_notice_has(self, result: SearchResult) -> bool:
        """Whether the best passage is one of the parts every notice has (its preamble, its
        contact paragraph), so any of them would answer alike."""
        top = result.hits[0].chunk
        anchor = _base_anchor(top)
        if anchor not in _SHARED_PARTS:
            return False
        return all(notice.find(anchor) is not None for notice in self.library.notices.values())

    def _compose(self, question: str, result: SearchResult, quote_basis: SearchResult, abstain: bool,
                 features: dict, turn: dict, doc: str | None = None) -> Answer:
        debug = {"features": features, "hits": [_hit_debug(h, self.retriever, result) for h in result.hits],
                 "follow_up": turn.get("follow_up", False), "turn": turn}
        if abstain:
            return self.abstention(question, result, debug, doc)
        numeric = bool(_NUMERIC_RE.search(quote_basis.query.normalized))
        citations = []
        top = result.hits[0]
        for rank, hit in enumerate(result.hits[: self.max_citations]):
            if rank > 0 and not self._also_answers(hit, top, quote_basis):
                continue
            spans = self._pick_sentences(hit.chunk, quote_basis, numeric, limit=self.max_sentences if rank == 0 else 2)
            citations.append(self._citation(hit, spans))
        first = citations[0]
        text = f"根据{_cite_label(first)}：{first.quote}"
        if len(citations) > 1:
            others = "；".join(_cite_label(c, with_notice=c.doc != first.doc) for c in citations[1:])
            text += f"\n另见{others}。"
        return Answer(question, text, False, citations, self.related_suggestions(top.chunk.anchor, top.chunk.doc),
                      kind="search", debug=debug, doc=top.chunk.doc)

    def _also_answers(self, hit, top, basis: SearchResult) -> bool:
        # A second passage is cited only when it is nearly as good on both views, judged on the
        # question itself (not on a follow-up's widened query).
        position = self.retriever.chunk_position
        best = basis.best_sentence
        return (
            hit.score >= 0.8 * top.score
            and best[position[hit.chunk.id]] >= best[position[top.chunk.id]] - 0.015
            and _base_anchor(hit.chunk) != _base_anchor(top.chunk)
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
            path=chunk.path, anchor=_base_anchor(chunk),
            passage=chunk.text, quote=quote, score=hit.score, title=chunk.title, quote_spans=list(spans),
            notice=self.notice_title(chunk.doc), quotes=quoted_sentences(notice.text, spans),
        )

    def _citation_for_node(self, notice, node: Node, body: str, rel_spans, score: float) -> Citation:
        start = notice.text.index(body, node.start)
        spans = [(start + s, start + e) for s, e in rel_spans]
        return Citation(
            doc=notice.doc, number=node.number if node.kind == "item" else "", heading=node.heading,
            path=node.path, anchor=node.anchor, passage=body, quote=body, score=score,
            title=f"第{node.number}条 {node.heading}" if node.kind == "item" else node.heading, quote_spans=spans,
            notice=self.notice_title(notice.doc), quotes=quoted_sentences(notice.text, spans),
        )

    def abstention(self, question: str, result: SearchResult | None = None, debug: dict | None = None,
                   doc: str | None = None) -> Answer:
        """The plain "the notice does not cover this" reply, with the contact details of the notice
        the conversation is about (of every notice, by issuer, when none is chosen) and suggestions."""
        chosen = self.notice_for(doc)
        title = chosen[1].full_title if chosen else "、".join(m.full_title for m in self.library.meta.values())
        # The wording is the Rasa project's (domain.yml's utter_out_of_scope), the facts the notice's.
        text = render(load_domain(), UTTER_OUT_OF_SCOPE, {"title": title, "contact": self.contact_line(doc)})
        suggestions = self.default_suggestions(doc)
        if result is not None:
            near = [h.chunk for h in result.hits if h.chunk.kind == "item" and (chosen is None or h.chunk.doc == chosen[0].doc)][:2]
            near_items = [self.library.notices[c.doc].find(_base_anchor(c)) for c in near]
            suggestions = _dedupe([_question_for(n) for n in near_items if n] + suggestions)[:3]
        return Answer(question, text, True, [], suggestions, kind="abstain", debug=debug or {},
                      doc=chosen[0].doc if chosen else None)

    # ---- suggestions ------------------------------------------------------------------------

    def default_suggestions(self, doc: str | None = None) -> list[str]:
        """Three questions the notice answers well (shown after a greeting or an abstention); with
        several notices and none chosen, the first of each, naming its issuer."""
        return self.welcome_suggestions(doc)[:3]

    def welcome_suggestions(self, doc: str | None = None) -> list[str]:
        """The widget's opening chips: the notice's own (``welcome:`` in its metadata) or, where
        staff gave none, questions its structure answers."""
        chosen = self.notice_for(doc)
        if chosen is not None:
            return list(chosen[1].welcome) or _structure_questions(chosen[0])
        out = []
        for d, notice in self.library.notices.items():
            issuer = _issuer_name(self.library.meta[d].issuer)
            out.append(f"{issuer}整改了哪些方面？")
            first = next(iter(notice.items()), None)
            if first is not None:
                out.append(f"{issuer}：{_progress_question(first)}")
        return out[:6]

    def examples(self, doc: str | None = None) -> dict[str, str]:
        """A content question and an item by number that the notice answers (its welcome questions
        first): the ``example_question`` and ``example_item`` of the help and default replies."""
        notice, _ = self.notice_or_first(doc)
        welcome = self.welcome_suggestions(notice.doc)
        item = next((q for q in welcome if parse_item_number(q) is not None), None)
        if item is None:
            first = next(iter(notice.items()), None)
            item = f"第{first.number}条讲了什么？" if first else "这份通报整改了哪些方面？"
        question = next((q for q in welcome if parse_item_number(q) is None and not _OVERVIEW_RE.search(q)
                         and not asks_for_contact(q)), welcome[0] if welcome else "这份通报整改了哪些方面？")
        return {"example_question": question, "example_item": item}

    def related_suggestions(self, anchor: str, doc: str | None = None) -> list[str]:
        """2–3 questions about the items next to the one just answered (same topic first)."""
        notice, _ = self.notice_or_first(doc)
        base = passage_anchor("item", anchor)
        items = notice.items()
        index = next((i for i, it in enumerate(items) if it.anchor == base), None)
        if index is None:
            return self.default_suggestions(notice.doc)[:3]
        topic = next((t for t in notice.topics() if items[index] in t.children), None)
        siblings = [it for it in topic.children if it.kind == "item" and it.anchor != base] if topic else []
        neighbours = siblings + [items[j] for j in (index + 1, index - 1) if 0 <= j < len(items)]
        out = _dedupe([_question_for(it) for it in neighbours if it.anchor != base])
        return out[:3]


# ---- helpers ---------------------------------------------------------------------------------






def _as_context(context) -> Context | None:
    """A :class:`Context`, from one or from the slots as a Rasa tracker holds them."""
    if isinstance(context, dict):
        return Context(question=context.get("last_question"), doc=context.get("last_doc"),
                       anchor=context.get("last_anchor") or context.get("last_item"))
    return context


def _decided_by(features: dict, abstain: bool) -> str:
    """The scope decision in words, for staff."""
    decisive = features.get("decisive") or []
    if decisive:
        return "决定性信号：" + "、".join(decisive)
    p = features.get("p_out_of_scope")
    return f"学习模型：超出范围的概率 {p}" + ("，不回答" if abstain else "，回答")


def _body(notice, item: Node) -> str:
    start = item.body_start if item.body_start >= item.start else item.start
    return notice.text[start : item.end].strip()


def _topic_of(notice, item: Node) -> str:
    topic = next((t for t in notice.topics() if item in t.children), None)
    return f"“{topic.label}{topic.heading}”" if topic else ""


def _structure_questions(notice) -> list[str]:
    """Questions a notice's own structure answers, each kind once: two items' progress, the
    overview, an item by number, the contact paragraph."""
    items = notice.items()
    out = [_progress_question(items[k]) for k in sorted({0, len(items) // 2, len(items) - 1}) if k < len(items)]
    out.append("整改了哪些方面？")
    if notice.find("contact") is not None:
        out.append("如何反映意见建议？")
    return out






def _topic_button(topic: Node) -> str:
    return f"{topic.label}{topic.heading}"


def _progress_question(item: Node) -> str:
    """How a citizen asks about an item: 应急广播系统建设进展如何？, or, of a problem, 挂号难…的问题
    整改了吗？ (its first clause)."""
    if item.problem:
        return f"{re.split(r'[，,；;]', item.heading)[0]}的问题整改了吗？"
    return f"{item.heading}进展如何？"


def _question_for(item: Node) -> str:
    # Asked as a citizen would, from the item's own heading (for any notice); each such question
    # cites its item (tests/bot/test_answer.py asks every one of the seed's).
    return _progress_question(item)


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
        "doc": hit.chunk.doc,
        "anchor": hit.chunk.anchor,
        "title": hit.chunk.title,
        "fused": round(hit.score, 4),
        "ranks": hit.ranks,
        "scores": {k: round(v, 4) for k, v in hit.scores.items()},
        # Why the labelled questions voted (or not): the nearest one labelled with this passage.
        "labelled": {"question": nearest[0], "similarity": round(nearest[1], 4)} if nearest else None,
    }


# An office a question names (卫健局, 河西市卫生健康局): a few characters before 局/厅/委/办.
_OFFICE_NAME_RE = re.compile(r"[\u4e00-\u9fff]{2,8}?[局厅委办]")


def _short_office(office: str) -> str:
    """The short form to test against an issuer: its last three characters (卫健局 of 河西卫健局)."""
    return office[-3:] if len(office) > 3 else office


def _issuer_name(issuer: str) -> str:
    """中共河西市卫生健康局党组 → 河西市卫生健康局: the office, as citizens name it."""
    return issuer.removeprefix("中共").removesuffix("党组").removesuffix("党委") or issuer


def _issuer_place(issuer: str) -> str:
    """The city or county an office belongs to (河西市卫生健康局 → 河西), or ""."""
    match = re.match(r"([\u4e00-\u9fff]{2,3}?)[省市县区]", issuer)
    return match.group(1) if match else ""


def _phone_and_email(c) -> str:
    parts = []
    if c.phone:
        parts.append(f"联系电话 {c.phone}")
    if c.email:
        parts.append(f"电子邮箱 {c.email}")
    return "，".join(parts)


def _channels_of(c) -> str:
    parts = []
    if c.phone:
        parts.append(f"联系电话 {c.phone}")
    if c.address:
        parts.append(f"通信地址 {c.address}" + (f"（邮政编码 {c.postcode}）" if c.postcode else ""))
    if c.email:
        parts.append(f"电子邮箱 {c.email}")
    return "；".join(parts)
