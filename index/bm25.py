"""Okapi BM25 over pre-tokenised documents (words or character bigrams)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


class BM25:
    """BM25 with the usual Lucene-style idf, so that no term scores below zero.

    :param docs: one token list per document.
    :param k1: term-frequency saturation.
    :param b: length normalisation.
    :raises ValueError: on an empty corpus or parameters out of range.
    """

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        if not docs:
            raise ValueError("BM25 needs at least one document")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"bad BM25 parameters k1={k1}, b={b}")
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = np.array([len(d) for d in docs], dtype=np.float32)
        self.avgdl = float(self.lengths.mean()) or 1.0
        df = Counter(t for d in docs for t in set(d))
        self.df = dict(df)  # term -> how many documents hold it
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: list[str]) -> np.ndarray:
        """One score per document (float32)."""
        out = np.zeros(len(self.tfs), dtype=np.float32)
        norm = self.k1 * (1 - self.b + self.b * self.lengths / self.avgdl)
        for term, qtf in Counter(query).items():
            idf = self.idf.get(term)
            if idf is None:
                continue
            tf = np.array([d.get(term, 0) for d in self.tfs], dtype=np.float32)
            out += idf * tf * (self.k1 + 1) / (tf + norm) * (1 + math.log(qtf))
        return out
