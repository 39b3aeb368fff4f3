"""The labelled questions the search learns from, as one immutable set.

Staff label citizens' questions with the passage that answers them (or ``-``: the notice does
not); the ``examples`` ranker votes for a passage when a question is close to one labelled with
it, and the scope model compares the nearest answerable and unanswerable labelled questions. The
set is built with the index and can be replaced while the server answers (a staff label is
answered with seconds later, before the next index is built): every search reads the set once,
so a replacement never mixes two sets within one answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# (normalised question, its notice, the chunk positions it was labelled with; none: out of scope)
Example = tuple[str, str, list[int]]


@dataclass(frozen=True)
class LabelledSet:
    """Labelled questions with their vectors, in index order.

    :param examples: one :data:`Example` per labelled question.
    :param vectors: (len(examples), dim) float32, L2-normalised query embeddings.
    """

    examples: tuple[Example, ...]
    vectors: np.ndarray
    # (example row, chunk position) pairs: a question labelled item-24|item-25 votes for both.
    pairs: np.ndarray = field(init=False)
    # Per notice: which rows it answers and which it does not (boolean masks).
    kinds: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False)

    def __post_init__(self) -> None:
        if self.vectors.shape[0] != len(self.examples):
            raise ValueError(f"{len(self.examples)} labelled questions but {self.vectors.shape[0]} vectors")
        pairs = np.array([(row, i) for row, (_, _, targets) in enumerate(self.examples) for i in targets],
                         dtype=np.int64).reshape(-1, 2)
        unanswerable = np.array([not targets for _, _, targets in self.examples], dtype=bool)
        kinds = {}
        for doc in {doc for _, doc, _ in self.examples}:
            mine = np.array([d == doc for _, d, _ in self.examples], dtype=bool)
            kinds[doc] = (mine & ~unanswerable, mine & unanswerable)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "kinds", kinds)

    @classmethod
    def empty(cls, dim: int) -> "LabelledSet":
        return cls((), np.zeros((0, dim), dtype=np.float32))

    @property
    def texts(self) -> list[str]:
        return [text for text, _, _ in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def vector_of(self) -> dict[str, np.ndarray]:
        """Question text → vector (what a replacement set reuses rather than embeds again)."""
        return {text: self.vectors[row] for row, (text, _, _) in enumerate(self.examples)}

    def similarities(self, vector: np.ndarray, leave_out: str | None = None,
                     hide_similar: float | None = None) -> np.ndarray:
        """The question's cosine to every labelled question (-1.0 for those left out: the text
        ``leave_out`` itself, and any at least ``hide_similar`` close). Every one is scored (a
        few thousand dot products): no need for FAISS's sorted top-k, the inner product is the same."""
        sims = self.vectors @ vector.reshape(-1)
        if leave_out is not None:
            sims[[row for row, (text, _, _) in enumerate(self.examples) if text == leave_out]] = -1.0
        if hide_similar is not None:
            sims[sims >= hide_similar] = -1.0
        return sims

    def chunk_scores(self, sims: np.ndarray, chunks: int) -> np.ndarray:
        """Per chunk: the cosine to the nearest question labelled with it (0.0 for chunks with none)."""
        best = np.zeros(chunks, dtype=np.float32)
        if len(self.pairs):
            np.maximum.at(best, self.pairs[:, 1], sims[self.pairs[:, 0]])
        return best

    def nearness(self, sims: np.ndarray, doc: str) -> tuple[float | None, float | None]:
        """Cosine to the nearest answerable and the nearest unanswerable question labelled for
        ``doc``; ``None`` where that notice has none of the kind."""
        answerable, unanswerable = self.kinds.get(doc, (None, None))
        return (float(sims[answerable].max()) if answerable is not None and answerable.any() else None,
                float(sims[unanswerable].max()) if unanswerable is not None and unanswerable.any() else None)

    def nearest(self, sims: np.ndarray, chunk: int) -> tuple[str, float] | None:
        """The question labelled with chunk position ``chunk`` nearest by ``sims``, and its cosine;
        ``None`` when the chunk has none (or all are left out)."""
        rows = self.pairs[self.pairs[:, 1] == chunk, 0]
        if not len(rows):
            return None
        chosen = sims[rows]
        if chosen.max() < 0:
            return None
        best = int(np.argmax(chosen))
        return self.examples[rows[best]][0], float(chosen[best])
