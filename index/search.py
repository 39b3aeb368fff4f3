"""Hybrid search over the notices: dense (FAISS) and BM25 rankings, fused.

Six rankers look at a question: dense similarity to whole chunks; dense similarity to what a
chunk is *about* (its heading and the everyday words staff listed for it in the notice's
``aliases``, so 家底 finds 固定资产 even where the model does not know the two are one thing);
dense similarity to the best single sentence of each chunk; BM25 over jieba words and BM25 over
character bigrams (both also reading the aliases); and dense similarity to the questions staff
have labelled with the chunk (``<doc>.questions.tsv``: the best-matching one counts), so a way
of asking seen before finds its passage again, as a retrieval intent's examples do in Rasa.
The passage rankers' scores are fused by a weighted sum after min–max scaling over the chunks
(``fusion="score"``, the default; the labelled questions add their vote on top, scaled by how
close the nearest one is, see :data:`EXAMPLE_FLOOR`): unlike reciprocal-rank fusion
(``fusion="rrf"``) it keeps *how much* better a ranker finds one chunk than the next, so a BM25
score three times the runner-up outweighs a dense score a hair above it (bench/RESULTS.md keeps
the comparison; in RRF a labelled question votes by rank, and only from the floor up).

The built index lives in ``index/build/`` with a manifest (source hashes, model, dimension,
build time, file hashes). It is rebuilt when a source or the model changes, written to a
temporary folder and renamed into place, and checked on load: a damaged or mismatched index is
rebuilt, never used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from index.bm25 import BM25
from index.chunking import Chunk, chunk_notice
from index.labelled import Example, LabelledSet
from index.store import SOURCES, IndexStorage, IndexUnusableError, IndexWriteError  # noqa: F401 (re-exported)
from index.text import add_user_words, bigrams, normalize, words
from knowledge.questions import Question, anchor_matches, load_questions
from knowledge.parser import NoticeParseError
from knowledge.store import (NOTICES_DIR, SYNONYMS_FILE, Library, fingerprint, load_library, load_synonyms,
                             merged_synonyms, questions_path, source_files)

log = logging.getLogger(__name__)

# 6: each generation in a folder of its own, with the sources it was built from (index.store).
FORMAT_VERSION = 6
DEFAULT_BUILD_DIR = Path(__file__).resolve().parent / "build"
RANKERS = ("dense", "about", "sentence", "bm25", "bigram", "examples")
FUSIONS = ("score", "rrf")
# Measured on the tuning questions (bench/RESULTS.md): the best-sentence ranker, fused, lowers
# recall@1 (it rewards one lucky sentence over a passage that answers), so it informs abstention
# and quoting but does not vote. The passage-reading rankers vote equally. A labelled question
# counts from cosine EXAMPLE_FLOOR up, linearly, and one asked again word for word outweighs all
# four of them. Chosen by replaying the retired held-out sets in the order they were written,
# each searched with only the questions labelled before it (bench/bench_labelled.py): floors
# 0.88–0.90 gain the most and still gain when every labelled question closer than 0.93 is hidden
# (a way of asking never seen); higher floors give the gain up.
DEFAULT_WEIGHTS = {"dense": 1.0, "about": 1.0, "sentence": 0.0, "bm25": 1.0, "bigram": 1.0, "examples": 5.0}
EXAMPLE_FLOOR = 0.90


@dataclass
class Hit:
    """One chunk found for a query, with each ranker's view of it."""

    chunk: Chunk
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def dense_rank(self) -> int:
        return self.ranks.get("dense", 0)

    @property
    def dense_score(self) -> float:
        return self.scores.get("dense", 0.0)

    @property
    def bm25_rank(self) -> int:
        return self.ranks.get("bm25", 0)

    @property
    def bm25_score(self) -> float:
        return self.scores.get("bm25", 0.0)


@dataclass
class Query:
    """A question as the rankers see it."""

    text: str
    normalized: str
    expanded: str
    words: list[str]
    bigrams: list[str]
    vector: np.ndarray


@dataclass
class SearchResult:
    """Hits plus what the answer composer needs: the query and every sentence's similarity."""

    query: Query
    hits: list[Hit]
    sentence_sims: np.ndarray
    # Per chunk (in ``Retriever.chunks`` order): its best sentence's similarity.
    best_sentence: np.ndarray
    # How like the nearest answerable and the nearest unanswerable question labelled for the
    # notice of the first hit the question is (cosine; None when that notice has none of the kind).
    labelled_answerable: float | None = None
    labelled_unanswerable: float | None = None
    # The question's cosine to every labelled question (-1.0: left out), in index order.
    example_sims: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    # The labelled questions ``example_sims`` was computed over (staff may replace the set meanwhile).
    labelled: LabelledSet | None = None


class Retriever:
    """Hybrid FAISS + BM25 retriever over a library of notices.

    :param embedder: an :class:`index.embedding.Embedder` (injected; loaded on ``warm_up``).
    :param library_dir: folder of notices; default ``knowledge/notices``.
    :param build_dir: where the built index lives; default ``index/build``.
    :param top_k: hits returned by default.
    :param rrf_k: the reciprocal-rank-fusion constant (``fusion="rrf"`` only).
    :param weights: weight of each ranker in the fusion.
    :param fusion: ``"score"`` (min–max scaled scores, summed) or ``"rrf"`` (reciprocal ranks).
    :param synonyms: query expansions; default ``knowledge/synonyms.yml``.
    :param progress: show a progress bar while building.
    :param leave_one_out: the ``examples`` ranker ignores a labelled question equal to the one
        asked (for measuring or learning on the labelled questions themselves, never in service).
    :param example_floor: the cosine from which a labelled question votes.
    :param hide_similar: ignore labelled questions at least this close to the one asked (a
        benchmark's stand-in for a way of asking never seen before; never in service).
    """

    def __init__(
        self,
        embedder,
        library_dir: str | Path | None = None,
        build_dir: str | Path | None = None,
        top_k: int = 5,
        rrf_k: int = 10,
        weights: dict[str, float] | None = None,
        synonyms: dict[str, list[str]] | None = None,
        progress: bool = False,
        fusion: str = "score",
        leave_one_out: bool = False,
        example_floor: float = EXAMPLE_FLOOR,
        hide_similar: float | None = None,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if rrf_k < 1:
            raise ValueError(f"rrf_k must be >= 1, got {rrf_k}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        weights = dict(weights or DEFAULT_WEIGHTS)
        unknown = set(weights) - set(RANKERS)
        if unknown:
            raise ValueError(f"unknown rankers in weights: {sorted(unknown)}; known: {RANKERS}")
        self.embedder = embedder
        self.library_dir = Path(library_dir) if library_dir else None
        self.build_dir = Path(build_dir) if build_dir else DEFAULT_BUILD_DIR
        self.storage = IndexStorage(self.build_dir)
        # True when answering from an index of notices that have changed since (load_last_good).
        self.stale = False
        self.top_k = top_k
        self.rrf_k = rrf_k
        self.weights = weights
        self.fusion = fusion
        self._synonyms = synonyms
        self.progress = progress
        self.last_embedded = 0  # how many passage texts the last build embedded (the rest were cached)
        self.leave_one_out = leave_one_out
        if not 0.0 <= example_floor < 1.0:
            raise ValueError(f"example_floor must be in [0, 1), got {example_floor}")
        self.example_floor = example_floor
        self.hide_similar = hide_similar
        self._lock = threading.Lock()
        self._ready = False
        # A turn embeds its question once: intent recognition and search share the vector.
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()
        self.library: Library | None = None
        self.chunks: list[Chunk] = []
        self.manifest: dict = {}
        self.labelled = LabelledSet.empty(0)

    # ---- loading and building -------------------------------------------------------------

    @property
    def index_dir(self) -> Path:
        """The newest generation of the index (a link to it, :mod:`index.store`)."""
        return self.storage.current

    def warm_up(self) -> None:
        """Load the model, the notices and the index; build the index if missing or stale."""
        with self._lock:
            if not self._ready:
                self._open("load-or-build")

    def rebuild(self) -> dict:
        """Build the index anew, whatever is on disk. :returns: the new manifest."""
        with self._lock:
            self._open("build")
            return self.manifest

    def load_last_good(self) -> None:
        """Load the newest good index on disk, never building: the current one when it matches
        the notices; else (the notices changed, or the newest build is damaged) the newest intact
        generation of this model, with the very notices it was built from, and ``stale`` set.
        A server answers from it while a new index is built beside it.

        :raises IndexUnusableError: when no generation on disk is intact.
        """
        with self._lock:
            self._open("existing")

    def build_if_needed(self) -> dict | None:
        """Build the index unless the one on disk is current, under the build lock (another
        process may have built it meanwhile). Nothing is loaded.

        :returns: the new manifest, or None when the index was current.
        :raises IndexWriteError: when the index folder is read-only or full.
        """
        self.storage.clean_stale_temp()
        self.embedder.warm_up()
        try:
            library = load_library(self.library_dir)
        except NoticeParseError as exc:  # a staff mistake in a notice: /healthz says which
            self.storage.record("failed", str(exc))
            raise
        self._use_sources(library, self._configured_synonyms())
        with self.storage.build_lock():
            if self.is_current():
                return None
            return self._build(self._expected_manifest())

    def _open(self, mode: str) -> None:
        self.storage.clean_stale_temp()
        self.embedder.warm_up()
        self.stale = False
        if mode == "existing":
            try:
                self._use_sources(load_library(self.library_dir), self._configured_synonyms())
                self._load(self.storage.current, self._expected_manifest())
            except (IndexUnusableError, NoticeParseError, OSError) as exc:
                log.warning("%s — answering from the last good index", exc)
                self._load_last_good()
        else:
            self._use_sources(load_library(self.library_dir), self._configured_synonyms())
            expected = self._expected_manifest()
            try:
                if mode == "build":
                    raise IndexUnusableError("重建索引 / rebuild requested")
                self._load(self.storage.current, expected)
            except IndexUnusableError as exc:
                log.warning("%s — rebuilding", exc)
                with self.storage.build_lock():
                    if mode == "build" or not self.is_current():
                        self._build(expected)
                self._load(self.storage.current, expected)
        self._prepare_lexical()
        self._ready = True

    def _load_last_good(self) -> None:
        """Load the newest intact generation with the sources it carries (see load_last_good)."""
        kind = {"format": FORMAT_VERSION, "model": self.embedder.name}
        reasons = []
        for generation in self.storage.generations():
            try:
                manifest = self.storage.read_manifest(generation, kind)
                snapshot = generation / SOURCES
                self._use_sources(load_library(snapshot), load_synonyms(snapshot / SYNONYMS_FILE.name))
                self._load(generation, kind)
            except (IndexUnusableError, NoticeParseError, OSError) as exc:
                reasons.append(str(exc))
                continue
            try:
                on_disk = fingerprint(source_files(self.library_dir or NOTICES_DIR))
            except OSError:
                on_disk = None
            self.stale = manifest.get("sources") != on_disk
            log.warning("answering from the index built at %s%s", manifest.get("built_at"),
                        " (the notices have changed since)" if self.stale else "")
            return
        raise IndexUnusableError(reasons[0] if reasons else f"索引不存在 / no index in {self.build_dir}")

    def _configured_synonyms(self) -> dict[str, list[str]]:
        return self._synonyms if self._synonyms is not None else load_synonyms()

    def _use_sources(self, library: Library, synonyms: dict[str, list[str]]) -> None:
        self.library = library
        # An explicit ``synonyms`` (an ablation's {}) stands alone; else the genre's and each notice's.
        self.synonyms = synonyms if self._synonyms is not None else merged_synonyms(library, synonyms)
        add_user_words(self._user_words())

    def is_current(self) -> bool:
        """Whether the index on disk matches the sources and the model and every file it lists is
        intact (their hashes are checked, as at load; no model load needed)."""
        try:
            manifest = self.storage.read_manifest(self.storage.current,
                                                  {"format": FORMAT_VERSION, "model": self.embedder.name})
            return manifest.get("sources") == fingerprint(source_files(self.library_dir or NOTICES_DIR))
        except (IndexUnusableError, OSError):
            return False

    def _user_words(self) -> list[str]:
        out = []
        for notice in self.library.notices.values():
            for node in notice.walk():
                if node.kind in ("item", "topic", "section", "part"):
                    out.append(node.heading)
            out.extend(re.findall(r"[“\"《]([^”\"》]{2,16})[”\"》]", notice.text))
        for meta in self.library.meta.values():
            out.extend(w for words_ in meta.aliases.values() for w in words_)
        for key, values in (self.synonyms or {}).items():
            out.append(key)
            out.extend(values)
        return out

    def _expected_manifest(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "sources": fingerprint(self.library.source_files()),
            "model": self.embedder.name,
        }

    def _chunk_all(self) -> list[Chunk]:
        counter = getattr(self.embedder, "token_count", None)
        chunks: list[Chunk] = []
        for notice in self.library.notices.values():
            chunks.extend(chunk_notice(notice, counter))
        return chunks

    def _build(self, expected: dict) -> dict:
        """Build a new generation from ``self.library`` (call under the build lock).

        :returns: its manifest.
        :raises IndexWriteError: when the folder is read-only or full, found before embedding.
        """
        started = time.perf_counter()
        self.storage.record("building")
        try:
            # A new generation is about the size of the current one (the sources are small).
            self.storage.check_writable(int(self.storage.size_of_current() * 1.2))
            manifest = self._build_generation(expected, started)
        except BaseException as exc:
            self.storage.record("failed", str(exc) or type(exc).__name__)
            raise
        self.storage.record("built")
        log.info("index built: %d chunks, %d sentences in %.1fs", manifest["chunks"], manifest["sentences"],
                 time.perf_counter() - started)
        return manifest

    def _build_generation(self, expected: dict, started: float) -> dict:
        chunks = self._chunk_all()
        sentence_rows = [(ci, s, e) for ci, c in enumerate(chunks) for (s, e) in c.sentences]
        texts = [c.embedding_text() for c in chunks]
        about_texts = [self.about_text(c) for c in chunks]
        notice_text = {doc: n.text for doc, n in self.library.notices.items()}
        sentence_texts = [notice_text[chunks[ci].doc][s:e] for ci, s, e in sentence_rows]
        vectors = self._embed_passages_cached(texts + about_texts + sentence_texts)
        n = len(texts)
        chunk_vecs, about_vecs, sentence_vecs = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
        examples = self._labelled_examples(chunks)
        example_vecs = self._embed_questions([text for text, _, _ in examples], chunk_vecs.shape[1])

        def write(tmp: Path) -> None:
            for name, vecs in (("chunks.faiss", chunk_vecs), ("about.faiss", about_vecs),
                               ("sentences.faiss", sentence_vecs), ("examples.faiss", example_vecs)):
                flat = faiss.IndexFlatIP(vecs.shape[1])
                flat.add(vecs)
                faiss.write_index(flat, str(tmp / name))
            (tmp / "chunks.json").write_text(
                json.dumps({"chunks": [c.to_dict() for c in chunks], "sentences": sentence_rows,
                            "examples": examples,
                            # what chunks/about/sentences.faiss embed, in order: the next build's cache
                            "embedded": {"chunks": texts, "about": about_texts, "sentences": sentence_texts}},
                           ensure_ascii=False),
                encoding="utf-8",
            )

        fields = dict(expected, dimension=int(chunk_vecs.shape[1]), chunks=len(chunks), sentences=len(sentence_rows),
                      examples=len(examples), build_seconds=round(time.perf_counter() - started, 2))
        return self.storage.write(write, self.library.source_files(), fields)

    def _embed_passages_cached(self, texts: list[str]) -> np.ndarray:
        """The passages' vectors, embedding only the texts the index on disk does not already hold
        under the same model (adding or changing one notice embeds that notice's passages)."""
        known = self._previous_passage_vectors()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, self._embed_passages(missing)))
        self.last_embedded = len(missing)
        return np.vstack([known[t] for t in texts]).astype(np.float32)

    def _previous_passage_vectors(self) -> dict[str, np.ndarray]:
        """Passage text → vector, from the index on disk when it is intact and of this model and
        format; else nothing."""
        try:
            folder = self.index_dir.resolve(strict=True)
            self.storage.read_manifest(folder, {"format": FORMAT_VERSION, "model": self.embedder.name})
            embedded = json.loads((folder / "chunks.json").read_text(encoding="utf-8")).get("embedded") or {}
            out: dict[str, np.ndarray] = {}
            for name in ("chunks", "about", "sentences"):
                stored = faiss.read_index(str(folder / f"{name}.faiss"))
                texts = embedded.get(name) or []
                if stored.ntotal == len(texts) and texts:
                    out.update(zip(texts, stored.reconstruct_n(0, stored.ntotal)))
            return out
        except Exception:  # no index, or a damaged one: embed everything
            return {}

    def _embed_passages(self, texts: list[str]) -> np.ndarray:
        return np.vstack(self._embed_in_batches(texts, self.embedder.embed_passages, "向量化 embedding", 32))

    def _embed_in_batches(self, texts: list[str], embed, desc: str, batch: int) -> list[np.ndarray]:
        """``embed`` over ``texts``, in batches with a progress bar when building with progress
        (else in one call: the embedder batches by itself)."""
        if not self.progress:
            return [np.asarray(embed(texts), dtype=np.float32)] if texts else []
        from tqdm import tqdm

        return [np.asarray(embed(texts[i : i + batch]), dtype=np.float32)
                for i in tqdm(range(0, len(texts), batch), desc=desc, unit="batch")]

    def _labelled_examples(self, chunks: list[Chunk],
                           questions: dict[str, list[Question]] | None = None) -> list[Example]:
        """Each labelled question (normalised) with its notice and the chunks it was labelled
        with (none: the notice does not answer it); ``questions`` defaults to the library's."""
        out = []
        for doc, asked in (self.library.questions if questions is None else questions).items():
            if doc not in self.library.notices:
                continue
            for q in asked:
                targets = sorted({i for anchor in q.expected for i in self._chunks_for(doc, anchor, chunks)})
                if targets or q.out_of_scope:
                    out.append((normalize(q.question), doc, targets))
                else:
                    log.warning("labelled question %r names %s, which no passage holds: not used",
                                q.question, "|".join(q.expected))
        return out

    # ---- labels given while the server answers ---------------------------------------------

    def labels_on_disk(self) -> tuple:
        """What identifies the labelled-question files in the library folder now (their paths,
        sizes and modification times: a stat each, cheap enough for every few seconds)."""
        out = []
        for doc in sorted(self.library.notices if self.library else ()):
            try:
                path = questions_path(self.library_dir, doc)
                stat = path.stat()
                out.append((doc, stat.st_size, stat.st_mtime_ns))
            except (KeyError, OSError):
                out.append((doc, None, None))
        return tuple(out)

    def relabel(self) -> dict:
        """Answer with the labelled questions on disk now, before the next index is built: read
        every notice's ``questions.tsv``, embed the questions the labelled set lacks, and replace
        the set (searches under way finish with the one they started with).

        :returns: ``{"examples": how many, "embedded": how many were new}``.
        """
        self.warm_up()
        questions: dict[str, list[Question]] = {}
        for doc in self.library.notices:
            try:
                path = questions_path(self.library_dir, doc)
            except KeyError:  # a notice removed since the index was built: keep what it had
                questions[doc] = list(self.library.questions.get(doc, []))
                continue
            try:
                questions[doc] = load_questions(path) if path.exists() else []
            except (ValueError, OSError) as exc:  # a file being edited by hand: keep the last good
                log.warning("labelled questions not read (%s): answering with the ones before", exc)
                questions[doc] = list(self.library.questions.get(doc, []))
        examples = self._labelled_examples(self.chunks, questions)
        known = self.labelled.vector_of()
        missing = list(dict.fromkeys(text for text, _, _ in examples if text not in known))
        if missing:
            known.update(zip(missing, np.asarray(self.embedder.embed_queries(missing), dtype=np.float32)))
        dim = self.labelled.vectors.shape[1]
        vectors = (np.vstack([known[text] for text, _, _ in examples]).astype(np.float32) if examples
                   else np.zeros((0, dim), dtype=np.float32))
        self.labelled = LabelledSet(tuple(examples), vectors)
        return {"examples": len(examples), "embedded": len(missing)}

    def _chunks_for(self, doc: str, anchor: str, chunks: list[Chunk]) -> list[int]:
        """The chunks a labelled anchor stands for: the chunk of that anchor (or an item's
        pieces); else the chunks inside that node (a topic's items), or the one holding it (a
        point of an item the model did not split)."""
        own = [i for i, c in enumerate(chunks) if c.doc == doc and anchor_matches(c.anchor, [anchor])]
        if own:
            return own
        node = self.library.notices[doc].find(anchor)
        if node is None:
            return []
        inside = [i for i, c in enumerate(chunks) if c.doc == doc and node.start <= c.start and c.end <= node.end]
        return inside or [i for i, c in enumerate(chunks) if c.doc == doc and c.start <= node.start and node.end <= c.end]

    def _embed_questions(self, texts: list[str], dim: int) -> np.ndarray:
        """The labelled questions' vectors: those the index on disk already holds under the same
        model are reused (staff who label ten more questions wait for ten, not thousands)."""
        known = self._previous_question_vectors()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        parts = self._embed_in_batches(missing, self.embedder.embed_queries, "向量化 labelled questions", 64)
        known.update(zip(missing, (v for part in parts for v in part)))
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        return np.vstack([known[t] for t in texts]).astype(np.float32)

    def _previous_question_vectors(self) -> dict[str, np.ndarray]:
        """Labelled question → vector, from the index on disk if it is intact and of this model
        and format; else nothing (everything is embedded anew)."""
        try:
            folder = self.index_dir.resolve(strict=True)
            self.storage.read_manifest(folder, {"format": FORMAT_VERSION, "model": self.embedder.name})
            texts = [row[0] for row in json.loads((folder / "chunks.json").read_text(encoding="utf-8"))["examples"]]
            stored = faiss.read_index(str(folder / "examples.faiss"))
            if stored.ntotal != len(texts) or not texts:
                return {}
            return dict(zip(texts, stored.reconstruct_n(0, stored.ntotal)))
        except Exception:  # no index, or a damaged one: embed everything
            return {}

    def _load(self, generation: Path, expected: dict) -> None:
        """Load ``generation`` (resolved once: a swap meanwhile does not mix two builds).

        :raises IndexUnusableError: when it is missing, stale for ``expected`` or damaged.
        """
        try:
            folder = generation.resolve(strict=True)
        except OSError as exc:
            raise IndexUnusableError(f"索引不存在 / no index at {generation}") from exc
        manifest = self.storage.read_manifest(folder, expected)
        try:
            data = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
            chunks = [Chunk.from_dict(c) for c in data["chunks"]]
            dense = faiss.read_index(str(folder / "chunks.faiss"))
            about = faiss.read_index(str(folder / "about.faiss"))
            sent = faiss.read_index(str(folder / "sentences.faiss"))
            labelled = faiss.read_index(str(folder / "examples.faiss"))
            examples = [(str(text), str(doc), [int(i) for i in targets]) for text, doc, targets in data["examples"]]
        except Exception as exc:  # any damage at all means: rebuild
            raise IndexUnusableError(f"索引无法读取 / index unreadable: {exc}") from exc
        dim = manifest.get("dimension")
        if (dense.ntotal != len(chunks) or dense.d != dim or about.ntotal != len(chunks) or about.d != dim
                or sent.d != dim or sent.ntotal != len(data["sentences"])
                or labelled.d != dim or labelled.ntotal != len(examples)
                or any(not 0 <= i < len(chunks) for _, _, targets in examples for i in targets)):
            raise IndexUnusableError("索引内容与清单不符 / index contents disagree with the manifest")
        self.chunks = chunks
        self.dense = dense
        self.about_index = about
        self.sentence_index = sent
        vectors = (labelled.reconstruct_n(0, labelled.ntotal) if labelled.ntotal
                   else np.zeros((0, dim), dtype=np.float32))
        self.labelled = LabelledSet(tuple(examples), np.asarray(vectors, dtype=np.float32))
        self.sentence_rows = [tuple(r) for r in data["sentences"]]
        self.sentence_chunk = np.array([r[0] for r in self.sentence_rows], dtype=np.int64)
        self.chunk_position = {c.id: i for i, c in enumerate(chunks)}
        self.rows_by_chunk: dict[str, list[int]] = {c.id: [] for c in chunks}
        for row, (ci, _s, _e) in enumerate(self.sentence_rows):
            self.rows_by_chunk[chunks[ci].id].append(row)
        self.manifest = manifest

    def aliases(self, chunk: Chunk) -> tuple[str, ...]:
        """Staff-curated everyday words for what ``chunk`` covers (its notice's ``aliases``)."""
        meta = self.library.meta.get(chunk.doc) if self.library else None
        return meta.aliases_for(chunk.anchor) if meta else ()

    def passage_words(self, chunk: Chunk) -> str:
        """Everything the lexical rankers read of ``chunk`` (topic, heading, text, aliases), normalised."""
        return self._docs[self.chunk_position[chunk.id]]

    def about_text(self, chunk: Chunk) -> str:
        """What the ``about`` ranker embeds: the chunk's heading and its aliases."""
        return " ".join((chunk.title, *self.aliases(chunk)))

    def _prepare_lexical(self) -> None:
        # What the lexical rankers read of a chunk: its topic and heading, its text, and the
        # everyday words staff listed for it (document expansion: a citizen's 家底 finds 固定资产).
        docs = [f"{c.topic} {c.title} {c.text} {' '.join(self.aliases(c))}" for c in self.chunks]
        self._docs = [normalize(d) for d in docs]
        self.bm25 = BM25([words(d) for d in docs])
        self.bigram = BM25([bigrams(d) for d in docs])
        # Everything the notices say, the staff's aliases for them and the places of the issuer's
        # area, for "does the knowledge base know this word at all".
        self.vocabulary_text = "\n".join(
            [normalize(n.text) for n in self.library.notices.values()]
            + [normalize(" ".join(words_)) for meta in self.library.meta.values() for words_ in meta.aliases.values()]
            + [normalize(" ".join(meta.area)) for meta in self.library.meta.values()]
        )
        self.issuers = tuple(normalize(meta.issuer) for meta in self.library.meta.values())
        self.area = tuple(dict.fromkeys(normalize(p) for meta in self.library.meta.values() for p in meta.area))

    # ---- querying ---------------------------------------------------------------------------

    def specific_words(self, text: str) -> list[str]:
        """The question's words that single out a few passages (in at most a tenth of the chunks,
        counting aliases): 固定资产, 动员. 整改 or 通报 are everywhere and single out nothing."""
        self.warm_up()
        limit = max(2, round(0.1 * len(self.chunks)))
        # Counted in the passages' text, not their jieba words: 动员 is inside 动员会.
        return [w for w in words(text)
                if len(w) >= 2 and 0 < sum(1 for d in self._docs if w in d) <= limit]

    def sentence_text(self, row: int) -> str:
        ci, s, e = self.sentence_rows[row]
        return self.library.notices[self.chunks[ci].doc].text[s:e]

    def expand(self, text: str) -> str:
        """The question with staff-curated synonyms appended (normalised)."""
        norm = normalize(text)
        extra = []
        for key, values in self.synonyms.items():
            if key in norm:
                extra.extend(v for v in values if v not in norm and v not in extra)
        return f"{norm} {' '.join(extra)}".strip() if extra else norm

    def query_vector(self, text: str) -> np.ndarray:
        """The (1, dim) query embedding of normalised ``text``, from a small LRU cache."""
        norm = normalize(text)
        with self._vectors_lock:
            vector = self._vectors.get(norm)
            if vector is not None:
                self._vectors.move_to_end(norm)
                return vector
        vector = np.asarray(self.embedder.embed_queries([norm]), dtype=np.float32)
        vector.flags.writeable = False
        with self._vectors_lock:
            self._vectors[norm] = vector
            while len(self._vectors) > 256:
                self._vectors.popitem(last=False)
        return vector

    def prepare(self, text: str) -> Query:
        """Normalise, expand and embed a question once, for all rankers."""
        self.warm_up()
        norm = normalize(text)
        expanded = self.expand(text)
        vector = self.query_vector(norm)
        return Query(text, norm, expanded, words(expanded), bigrams(expanded), vector)

    def nearest_labelled(self, result: SearchResult, chunk: Chunk) -> tuple[str, float] | None:
        """The labelled question of ``chunk`` nearest to ``result``'s question and its cosine (for
        staff: why the ``examples`` ranker voted), or ``None`` when the chunk has none."""
        labelled = result.labelled if result.labelled is not None else self.labelled
        return labelled.nearest(result.example_sims, self.chunk_position[chunk.id])

    def search(self, text: str, top_k: int | None = None) -> list[Hit]:
        """The best chunks for a question, best first."""
        return self.search_full(text, top_k).hits

    def search_full(self, text: str, top_k: int | None = None, query: Query | None = None,
                    docs: tuple[str, ...] | None = None) -> SearchResult:
        """Like :meth:`search`, also returning the query and every sentence's similarity.

        :param docs: only these notices' passages are ranked (the scores are still those of the
            whole library, so a passage scores the same whichever notices are asked).
        """
        self.warm_up()
        top_k = top_k or self.top_k
        q = query or self.prepare(text)
        n = len(self.chunks)
        raw: dict[str, np.ndarray] = {}
        sims, ids = self.dense.search(q.vector, n)
        dense = np.zeros(n, dtype=np.float32)
        dense[ids[0]] = sims[0]
        raw["dense"] = dense
        asims, aids = self.about_index.search(q.vector, n)
        about = np.zeros(n, dtype=np.float32)
        about[aids[0]] = asims[0]
        raw["about"] = about
        ssims, sids = self.sentence_index.search(q.vector, self.sentence_index.ntotal)
        sentence_sims = np.zeros(self.sentence_index.ntotal, dtype=np.float32)
        sentence_sims[sids[0]] = ssims[0]
        best = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(best, self.sentence_chunk, sentence_sims)
        raw["sentence"] = best
        labelled = self.labelled  # read once: staff may replace it while this search runs
        example_sims = labelled.similarities(q.vector, q.normalized if self.leave_one_out else None,
                                             self.hide_similar)
        raw["examples"] = labelled.chunk_scores(example_sims, n)
        raw["bm25"] = self.bm25.scores(q.words)
        raw["bigram"] = self.bigram.scores(q.bigrams)
        fused = np.zeros(n, dtype=np.float64)
        ranks: dict[str, np.ndarray] = {}
        for name in RANKERS:
            order = np.argsort(-raw[name], kind="stable")
            rank = np.empty(n, dtype=np.int64)
            rank[order] = np.arange(1, n + 1)
            if name in ("bm25", "bigram"):
                rank[raw[name] <= 0] = n + 1  # no shared term: no vote
            elif name == "examples":
                rank[raw[name] < self.example_floor] = n + 1  # no labelled question close enough
            ranks[name] = rank
            w = self.weights.get(name, 0.0)
            if not w:
                continue
            if self.fusion == "rrf":
                fused += w / (self.rrf_k + rank)
            elif name == "examples":
                # Not scaled over the chunks: only a question close to a labelled one votes, by
                # how close it is (min–max would hand the full vote to whichever labelled chunk
                # is least far, however far that is, when few chunks have labelled questions).
                fused += w * np.clip((raw[name] - self.example_floor) / (1.0 - self.example_floor), 0.0, 1.0)
            else:
                low, high = float(raw[name].min()), float(raw[name].max())
                if high > low:
                    fused += w * (raw[name] - low) / (high - low)
        if self.fusion == "score":
            # A chunk that every passage-reading ranker puts first scores 1.0 (`or 1.0`: all
            # weights zero); a labelled question close to the one asked adds up to its weight on top.
            fused /= sum(w for name, w in self.weights.items() if w and name != "examples") or 1.0
        if docs:
            outside = np.array([c.doc not in docs for c in self.chunks])
            if not outside.all():
                fused = np.where(outside, -np.inf, fused)
        order = [i for i in np.argsort(-fused, kind="stable")[:top_k] if np.isfinite(fused[i])]
        hits = [
            Hit(
                chunk=self.chunks[i],
                score=float(fused[i]),
                ranks={k: int(ranks[k][i]) for k in RANKERS},
                scores={k: float(raw[k][i]) for k in RANKERS},
            )
            for i in order
        ]
        # The notice of the passage found: what one notice does not answer, another may.
        nearness = labelled.nearness(example_sims, self.chunks[order[0]].doc) if len(order) else (None, None)
        return SearchResult(q, hits, sentence_sims, best, *nearness, example_sims=example_sims, labelled=labelled)
