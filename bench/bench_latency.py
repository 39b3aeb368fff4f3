"""Warm answer latency in-process, next to the time to embed the question alone, and build time.

Run: ``python -m bench.bench_latency``. Writes the ``latency`` section of bench/RESULTS.md.
The embedding of the question is the floor: everything else an answer does (four rankers,
fusion, the scope model, sentence choice) should add little to it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench._results import percentile, write_section
from bot.evaluate import load_questions
from bot.runtime import build_bot
from index.search import Retriever
from bench._seed import SEED_QUESTIONS

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def _ms(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50) * 1000, percentile(values, 95) * 1000


def main() -> None:
    questions = [q.question for f in (SEED_QUESTIONS, DATA / "questions_heldout.tsv") for q in load_questions(f)]
    bot = build_bot()
    bot.warm_up()
    answerer, embedder = bot.answerer, bot.embedder
    for q in questions[:10]:  # warm caches and code paths
        answerer.answer(q)
        embedder.embed_queries([q])
    bot.retriever._vectors.clear()  # every timed answer embeds its question afresh

    answer_times, embed_times, dialogue_times = [], [], []
    for q in questions:
        started = time.perf_counter()
        answerer.answer(q)
        answer_times.append(time.perf_counter() - started)
    for q in questions:
        started = time.perf_counter()
        embedder.embed_queries([q])
        embed_times.append(time.perf_counter() - started)
    bot.retriever._vectors.clear()
    for i, q in enumerate(questions):
        started = time.perf_counter()
        bot.dialogue.handle(f"bench-{i % 20}", q)
        dialogue_times.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        fresh = Retriever(embedder, build_dir=Path(tmp))
        started = time.perf_counter()
        fresh.warm_up()
        build = time.perf_counter() - started
        chunks, sentences, labelled = len(fresh.chunks), len(fresh.sentence_rows), len(fresh.labelled)

    a50, a95 = _ms(answer_times)
    e50, e95 = _ms(embed_times)
    d50, d95 = _ms(dialogue_times)
    lines = [
        "## Answer latency and index build (`bench/bench_latency.py`)",
        "",
        f"{len(questions)} questions (tuning + held-out), warm, one at a time, in-process; "
        f"embedding engine: `{embedder.name}` ({embedder.backend}, {embedder.num_threads or 'all'} "
        f"inference thread{'s' if embedder.num_threads != 1 else ''}).",
        "",
        "| what | p50 ms | p95 ms | mean ms |",
        "|---|---|---|---|",
        f"| embed the question alone (the floor) | {e50:.1f} | {e95:.1f} | {statistics.mean(embed_times) * 1000:.1f} |",
        f"| full answer (`Answerer.answer`) | {a50:.1f} | {a95:.1f} | {statistics.mean(answer_times) * 1000:.1f} |",
        f"| full dialogue turn (intent + action) | {d50:.1f} | {d95:.1f} | {statistics.mean(dialogue_times) * 1000:.1f} |",
        "",
        f"Answer p50 / embedding p50 = **{a50 / e50:.2f}×** (target ≤ 1.5×).",
        "",
        f"Index build from scratch (chunking, {chunks} chunks, their {chunks} headings with aliases, {sentences} "
        f"sentences and {labelled} labelled questions embedded, FAISS, manifest): **{build:.1f} s**.",
    ]
    write_section("latency", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
