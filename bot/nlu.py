"""Intent recognition read from the Rasa training data (bot/data/nlu.yml).

The Rasa project's examples are the single source of truth: the embedded dialogue classifies a
message by its nearest training examples under the same sentence-transformers model the search
uses (a k-nearest-neighbour vote), so editing nlu.yml changes both bots alike. The example
vectors are cached beside the search index, keyed by the file's hash and the model's name.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from bot import constants as C
from bot.itemref import parse_item_number
from index.text import asks, normalize, words

log = logging.getLogger(__name__)
BOT_DIR = Path(__file__).resolve().parent
NLU_FILE = BOT_DIR / "data" / "nlu.yml"
# Intents whose reply is not a search of the notice: an unsure guess of one of these would hide a
# content question ("局党组采取什么办法严格落实整改？" looks like "整改了哪些方面"; "回头核查" is not
# "回头见").
_HIDES_CONTENT = {C.INTENT_ASK_OVERVIEW, C.INTENT_ASK_CONTACT, C.INTENT_HELP, *C.SMALL_TALK_INTENTS,
                  C.INTENT_COMPLAIN, C.INTENT_REQUEST_HUMAN, C.INTENT_NOT_UNDERSTOOD}
# Unmistakable requests for the contact paragraph (a keyword intent, as Rasa's RegexFeaturizer
# would learn it); anything vaguer ("私人邮箱") is left to the examples.
_CONTACT_RE = re.compile(r"(联系电话|联系方式|电话(?:是|号码)?多少|(?:电子)?邮箱(?:是|地址)|邮编|邮政编码|通信地址|邮寄地址|"
                         r"怎么反映|如何反映|向谁反映|公开期限|公示期)")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


def asks_for_contact(text: str) -> bool:
    """Whether ``text`` is an unmistakable request for the contact paragraph (联系电话, 怎么反映)."""
    return bool(_CONTACT_RE.search(normalize(text)))
# Greetings, thanks, goodbyes and acknowledgements never ask anything (help and 什么意思 do).
_SOCIAL = {C.INTENT_GREET, C.INTENT_GOODBYE, C.INTENT_THANK, C.INTENT_AFFIRM}
# Small talk speaks to the bot (你几岁了, 你叫什么名字): a question that addresses no one (叫什么名字
# 在哪) asks about the subject of the conversation, as does an unsure guess that it asks about the
# bot (都是哪些人 有名单吗; 是真人在回复吗 is sure).
_ADDRESSES_BOT_RE = re.compile(r"[你您妳]")
# A complaint made as such (我要投诉, 举报你们), not a question about complaints (旅游投诉怎么处理).
_COMPLAINT_RE = re.compile(r"(?:我|俺)(?:要|想|得|来|就要)(?:投诉|举报|告你们)|(?:投诉|举报)(?:你们|他们|这个局|你们局)")
# An accusation: 你们 (or an office), opening a clause, as the subject of a habitual adverb (就是/就会/只会/根本/从来…),
# asking nothing (你们就是官官相护), or 你们…有啥用 said rhetorically. Words of criticism themselves
# (走过场, 套话) are the NLU complain examples' job, as data, not alternatives here.
_ACCUSATION_RE = re.compile(
    r"(?:^|[\s，,。！!；;])(?:你们|你们局|你们单位|[\u4e00-\u9fff]{0,6}局)\S{0,10}?(?:就是|就会|就知道|只知道|只会|都是|全是|根本|从来|总是|老是|"
    r"光会|光说|净|真是)|"
    r"(?:^|[\s，,。！!；;])你们\S{0,10}有(?:个屁|啥|什么)用")
_CLAUSE_SPLIT_RE = re.compile(r"[\s，,。！!；;…~～]+")
_ENTITY_RE = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


@dataclass
class Example:
    text: str
    intent: str
    entities: list[dict]


def _marking_words(examples: list[Example], intents: tuple[str, ...], share: float = 0.6) -> dict[str, set[str]]:
    """For each intent, the words (of two characters or more) that its examples use and the other
    intents' examples mostly do not (人工, 工作人员 for a hand-off): what a message of that intent
    names, read from the training data."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total: dict[str, int] = defaultdict(int)
    for e in examples:
        for w in {w for w in words(e.text) if len(w) >= 2}:
            counts[e.intent][w] += 1
            total[w] += 1
    return {i: {w for w, n in counts[i].items() if n / total[w] >= share} for i in intents}


def strip_annotations(line: str) -> tuple[str, list[dict]]:
    """``第[16](item_number)条`` → (``第16条``, [{entity, value, start, end}])."""
    entities, out, pos = [], [], 0
    for match in _ENTITY_RE.finditer(line):
        out.append(line[pos : match.start()])
        start = sum(len(p) for p in out)
        value = match.group(1)
        out.append(value)
        name = match.group(2).split(":")[0].strip()
        if name.startswith("{"):
            name = yaml.safe_load(match.group(2)).get("entity", name)
        entities.append({"entity": name, "value": value, "start": start, "end": start + len(value)})
        pos = match.end()
    out.append(line[pos:])
    return "".join(out), entities


def load_examples(path: Path = NLU_FILE) -> list[Example]:
    """Every intent example of a Rasa 3.x NLU file, annotations removed."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    examples = []
    for block in data.get("nlu", []):
        intent = block.get("intent")
        if not intent:
            continue
        for raw in str(block.get("examples", "")).splitlines():
            raw = raw.strip()
            if raw.startswith("- "):
                text, entities = strip_annotations(raw[2:].strip())
                if text:
                    examples.append(Example(text, intent, entities))
    return examples


class IntentClassifier:
    """k-nearest-neighbour intents over the Rasa NLU examples.

    :param embedder: the shared :class:`index.embedding.Embedder`.
    :param nlu_file: the Rasa NLU file of the genre's intents (``bot/data/nlu.yml``).
    :param notice_files: the notices' own NLU files (``knowledge/notices/<doc>/nlu.yml``: questions
        about their topics), read after it.
    :param cache_dir: where example vectors are cached (default: the index build folder).
    :param k: neighbours that vote.
    :param temperature: how sharply a nearer neighbour outweighs a farther one.
    :param ambiguity_threshold: an overview, contact or help intent with less of the vote than
        this is ``nlu_fallback`` (the notice search) instead: an unsure guess must not hide a
        content question.
    :param embed_query: text → (1, dim) query vector; default the embedder's (the bot passes the
        retriever's cached one, so a turn embeds its question once).
    :param fallback_threshold: below this best similarity the intent is ``nlu_fallback``
        (Rasa's FallbackClassifier), which the rules send to the notice search.
    :param names_subject: text → whether it names something a few passages are about (the
        retriever's ``specific_words``). An unsure guess of a reply that is not a search stands
        when the turn names no such subject (我不知道怎么用你, 你们就知道发文件): there is nothing in
        the notices to search for.
    """

    def __init__(self, embedder, nlu_file: Path | None = None, cache_dir: Path | None = None,
                 notice_files: tuple[Path, ...] | list[Path] = (),
                 k: int = 10, temperature: float = 0.01, fallback_threshold: float = 0.83,
                 ambiguity_threshold: float = 0.8, embed_query=None, names_subject=None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 < ambiguity_threshold <= 1:
            raise ValueError(f"ambiguity_threshold must be in (0, 1], got {ambiguity_threshold}")
        if not 0 < fallback_threshold < 1:
            raise ValueError(f"fallback_threshold must be in (0, 1), got {fallback_threshold}")
        self.embedder = embedder
        self.nlu_file = Path(nlu_file or NLU_FILE)
        self.notice_files = tuple(Path(f) for f in notice_files)
        self.cache_dir = Path(cache_dir) if cache_dir else BOT_DIR.parent / "index" / "build"
        self.k = k
        self.temperature = temperature
        self.ambiguity_threshold = ambiguity_threshold
        self._embed_query = embed_query
        self._names_subject = names_subject
        self.fallback_threshold = fallback_threshold
        self._lock = threading.Lock()
        self.examples: list[Example] = []
        self.vectors: np.ndarray | None = None
        self._known: set[str] = set()
        self._marks: dict[str, set[str]] = {}

    def warm_up(self) -> None:
        """Read the examples and embed them (or load their cached vectors)."""
        with self._lock:
            if self.vectors is not None:
                return
            self.embedder.warm_up()
            files = (self.nlu_file, *self.notice_files)
            self.examples = [e for f in files for e in load_examples(f)]
            if not self.examples:
                raise ValueError(f"{self.nlu_file} has no intent examples")
            content = b"".join(f.read_bytes() for f in files)
            digest = hashlib.sha256(content + self.embedder.name.encode()).hexdigest()[:16]
            cache = self.cache_dir / f"nlu-{digest}.npy"
            vectors = self._read_cache(cache)
            if vectors is None:
                vectors = np.asarray(self.embedder.embed_queries([normalize(e.text) for e in self.examples]),
                                     dtype=np.float32)
                self._write_cache(cache, vectors)
            self.vectors = vectors
            self.labels = np.array([e.intent for e in self.examples])
            self._known = {" ".join(e.text.lower().split()) for e in self.examples}
            self._marks = _marking_words(self.examples, (C.INTENT_REQUEST_HUMAN,))

    def _read_cache(self, cache: Path) -> np.ndarray | None:
        """The cached example vectors, only if their recorded hash and shape still hold: a file
        overwritten with other vectors of the same shape is detected and rebuilt, never used."""
        stamp = cache.with_suffix(".sha256")
        if not cache.exists() or not stamp.exists():
            return None
        try:
            raw = cache.read_bytes()
            if hashlib.sha256(raw).hexdigest() != stamp.read_text(encoding="utf-8").strip():
                log.warning("NLU cache %s is damaged; embedding the examples again", cache.name)
                return None
            vectors = np.load(cache)
        except (OSError, ValueError) as exc:
            log.warning("NLU cache %s unreadable (%s); embedding the examples again", cache.name, exc)
            return None
        return vectors if vectors.shape[0] == len(self.examples) else None

    def _write_cache(self, cache: Path, vectors: np.ndarray) -> None:
        """Write the vectors and their hash, each atomically; a disk that refuses is only logged."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
            tmp.replace(cache)
            stamp_tmp = cache.with_suffix(".sha256.tmp")
            stamp_tmp.write_text(digest + "\n", encoding="utf-8")
            stamp_tmp.replace(cache.with_suffix(".sha256"))
        except OSError as exc:  # read-only or full: answer from memory, cache next time
            log.warning("could not cache the NLU vectors in %s: %s", self.cache_dir, exc)

    def knows(self, text: str) -> bool:
        """Whether ``text`` is one of the training examples (case and spaces aside)."""
        self.warm_up()
        return " ".join(text.lower().split()) in self._known

    def _clause_intent(self, text: str) -> tuple[str, float] | None:
        """The intent a statement's clauses, each heard on its own, settle, with its share of the
        vote; ``None`` when they settle nothing. A short message of one clause is read word by
        word (好的拜拜).

        - A clause that asks nothing, surely heard as a request for a person and naming what the
          hand-off examples name (有没有人值班 我要当面说; not 我想带队员去听): that request.
        - A clause of a statement surely heard as a complaint (效率也太低了吧 after what it is
          about): the complaint. A question is not one (its clauses ask the notice something).
        - Every part surely social, one of them a goodbye (好的，拜拜): the goodbye, which closes.
        """
        parts = [c for c in _CLAUSE_SPLIT_RE.split(text.strip()) if _CJK_RE.search(c)]
        if len(parts) < 2 and len(text.strip()) <= 8:
            parts = [w for w in words(text) if len(w) >= 2]
        if len(parts) < 2:
            return None
        heard = []
        for part in parts:
            votes, best_sim, _ = self._vote(self._vector(part))
            name, value = max(votes.items(), key=lambda kv: kv[1])
            share = value / sum(votes.values())
            sure = share >= self.ambiguity_threshold and best_sim >= self.fallback_threshold
            heard.append((name if sure else None, round(share, 4), part))
        for name, share, part in heard:
            if (name == C.INTENT_REQUEST_HUMAN and not asks(part)
                    and any(w in self._marks.get(name, ()) for w in words(part))):
                return name, share
        if not asks(text):
            for name, share, _ in heard:
                if name == C.INTENT_COMPLAIN:
                    return name, share
        names = {name for name, _, _ in heard}
        if names <= _SOCIAL and C.INTENT_GOODBYE in names:
            return C.INTENT_GOODBYE, min(share for _, share, _ in heard)
        return None

    def _vector(self, text: str) -> np.ndarray:
        if self._embed_query is not None:
            return self._embed_query(text)
        return np.asarray(self.embedder.embed_queries([normalize(text)]), dtype=np.float32)

    def _vote(self, vector: np.ndarray) -> tuple[dict[str, float], float, int]:
        """The k nearest examples' vote by intent, the best similarity, and the nearest example.

        e5 similarities crowd into 0.8–0.95, so a plain vote counts heads; weighting each
        neighbour by exp((sim − best) / T) lets the nearest examples decide (T measured on
        tests/data/intents_heldout.tsv: 0.01 → 96 %, plain vote → 87 %)."""
        sims = self.vectors @ np.asarray(vector, dtype=np.float32).reshape(-1)
        top = np.argsort(-sims)[: self.k]
        votes: dict[str, float] = defaultdict(float)
        for i in top:
            votes[self.examples[i].intent] += float(np.exp((sims[i] - sims[top[0]]) / self.temperature))
        return votes, float(sims[top[0]]), int(top[0])

    def parse(self, text: str, vector: np.ndarray | None = None) -> dict:
        """Rasa-style parse data: ``{"text", "intent": {name, confidence}, "entities", "intent_ranking"}``.

        :param vector: the message's query embedding, when the caller already has it.
        """
        self.warm_up()
        entities = []
        if not text.strip():
            return {"text": text, "intent": {"name": C.INTENT_HELP, "confidence": 1.0}, "entities": [],
                    "intent_ranking": []}
        if not _CJK_RE.search(text) and not self.knows(text):
            # Emoji, punctuation, digits, stray Latin: nearest examples would be a guess ("😀" came
            # out as thank). The notice search declines such input plainly, with the contact.
            return {"text": text, "intent": {"name": C.INTENT_NLU_FALLBACK, "confidence": 0.0}, "entities": [],
                    "intent_ranking": []}
        number = parse_item_number(text)
        if number is not None:
            entities.append({"entity": C.ENTITY_ITEM_NUMBER, "value": str(number)})
            ranking = [{"name": C.INTENT_ASK_ITEM_BY_NUMBER, "confidence": 1.0}]
            return {"text": text, "intent": ranking[0], "entities": entities, "intent_ranking": ranking}
        votes, best_sim, nearest = self._vote(self._vector(text) if vector is None else vector)
        total = sum(votes.values()) or 1.0
        ranking = sorted(({"name": n, "confidence": round(v / total, 4)} for n, v in votes.items()),
                         key=lambda r: -r["confidence"])
        intent = dict(ranking[0])
        unsure = intent["name"] in _HIDES_CONTENT and intent["confidence"] < self.ambiguity_threshold
        if best_sim < self.fallback_threshold or unsure:
            # (An unsure complaint is searched: 整改完是不是就撒手不管啦 is sceptical, and the notice
            # answers it.)
            # Only a guess near the examples stands (挖出了什么宝贝 is near none of them), and never
            # one of a question (几时能建好 is no greeting).
            keep = (intent["name"] in _HIDES_CONTENT and best_sim >= self.fallback_threshold
                    and not (intent["name"] in _SOCIAL and asks(text))
                    and intent["name"] not in (C.INTENT_ASK_OVERVIEW, C.INTENT_ASK_CONTACT, C.INTENT_COMPLAIN)
                    and self._names_subject is not None and not self._names_subject(text))
            # A complaint said as a statement (走形式而已, 啥也没变) stands however unsure: it asks
            # the notice nothing, so a search could only quote at it.
            keep = keep or (intent["name"] == C.INTENT_COMPLAIN and best_sim >= self.fallback_threshold
                            and not asks(text))
            if not keep:
                intent = {"name": C.INTENT_NLU_FALLBACK, "confidence": intent["confidence"]}
        if intent["name"] == C.INTENT_ASK_ITEM_BY_NUMBER:
            # Near 第八项说了什么 but with no item number in it (八项规定学习教育呢): only the
            # search can answer it.
            intent = {"name": C.INTENT_NLU_FALLBACK, "confidence": intent["confidence"]}
        unaddressed = (not _ADDRESSES_BOT_RE.search(text)
                       and (intent["name"] == C.INTENT_CHITCHAT
                            or (intent["name"] == C.INTENT_BOT_CHALLENGE
                                and intent["confidence"] < self.ambiguity_threshold)))
        if (intent["name"] in _SOCIAL or unaddressed) and asks(text) and not self.knows(text):
            # 对账销号是什么意思 is no acknowledgement, however near 好的 it sits.
            intent = {"name": C.INTENT_NLU_FALLBACK, "confidence": intent["confidence"]}
        if (intent["name"] in self._marks and asks(text) and not self.knows(text)
                and not any(w in self._marks[intent["name"]] for w in words(text))):
            # A question near the hand-off examples that names nothing they name (你们还招人吗,
            # 可以上门吗 vs 有没有人工) asks something: the search answers or declines. (Not for
            # complaints: their questions are rhetorical, 这种通报谁信啊.)
            intent = {"name": C.INTENT_NLU_FALLBACK, "confidence": intent["confidence"]}
        norm = normalize(text)
        sure = intent["confidence"] >= self.ambiguity_threshold and intent["name"] != C.INTENT_NLU_FALLBACK
        settled = None if sure and intent["name"] in (C.INTENT_COMPLAIN, C.INTENT_REQUEST_HUMAN) else self._clause_intent(text)
        if settled is not None:
            # 图书馆新馆拖到而家先局部开放 真系慢过蜗牛: the topic fills the embedding of the whole
            # message; the verdict is a clause of its own, and a statement asks the notice nothing.
            name, share = settled
            intent = {"name": name, "confidence": max(share, intent["confidence"]) if intent["name"] == name else share}
        if _COMPLAINT_RE.search(norm) or (_ACCUSATION_RE.search(norm)
                                          and (not asks(norm) or re.search(r"有(?:个屁|啥|什么)用", norm))):
            intent = {"name": C.INTENT_COMPLAIN, "confidence": 1.0}
        elif intent["name"] != C.INTENT_ASK_ITEM_BY_NUMBER and _CONTACT_RE.search(norm):
            intent = {"name": C.INTENT_ASK_CONTACT, "confidence": 1.0}
        return {"text": text, "intent": intent, "entities": entities, "intent_ranking": ranking,
                "nearest": {"text": self.examples[nearest].text, "similarity": round(best_sim, 4)}}


def classifier_for(retriever, **options) -> IntentClassifier:
    """The classifier of a retriever's library: the genre's examples and every notice's own, its
    vectors cached beside the index."""
    from knowledge.store import nlu_files

    return IntentClassifier(retriever.embedder, cache_dir=retriever.build_dir,
                            notice_files=nlu_files(retriever.library_dir), **options)
