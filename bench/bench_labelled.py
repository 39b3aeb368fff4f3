"""Does learning from labelled questions carry over to new askers? A replay in time order.

Each retired held-out set was written blind by its own author and then joined the notice's
labelled questions (tests/data/README.md). Replayed in the order they were written, each set is
searched with only the questions labelled *before* it, as a new citizen's questions are: the
gain it sees over the same search without labelled questions is the gain to expect. Hiding every
labelled question closer than a cut to the one asked stands in for a way of asking never seen
before (does the vote then mislead?). Search only (ranking, no abstention); the floors compared
are the cosine from which a labelled question votes.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from bench._results import write_section
from bot.evaluate import evaluate
from index.embedding import Embedder
from index.search import DEFAULT_WEIGHTS, EXAMPLE_FLOOR, Retriever
from knowledge.questions import load_questions
from knowledge.store import NOTICES_DIR
from bench._seed import SEED_QUESTIONS

# Line ranges (first, last) of the retired blind sets in the labelled file, oldest first
# (tests/data/README.md lists them all; the earliest ones were read for aliases as they came).
SETS = ((1140, 1284, 8), (1285, 1424, 9), (1425, 1565, 10), (1566, 1698, 11), (1699, 1836, 12),
        (1837, 1968, 13), (1969, 2103, 14), (2104, 2237, 15), (2238, 2362, 16), (2363, 2494, 17))
# (label, example weight, floor, hide labelled questions at least this close)
CONFIGS = (
    ("without labelled questions", 0.0, EXAMPLE_FLOOR, None),
    ("floor 0.88", DEFAULT_WEIGHTS["examples"], 0.88, None),
    ("floor 0.90", DEFAULT_WEIGHTS["examples"], 0.90, None),
    ("floor 0.94", DEFAULT_WEIGHTS["examples"], 0.94, None),
    ("floor 0.88, hide ≥ 0.95", DEFAULT_WEIGHTS["examples"], 0.88, 0.95),
    ("floor 0.90, hide ≥ 0.95", DEFAULT_WEIGHTS["examples"], 0.90, 0.95),
    ("floor 0.88, hide ≥ 0.93", DEFAULT_WEIGHTS["examples"], 0.88, 0.93),
    ("floor 0.90, hide ≥ 0.93", DEFAULT_WEIGHTS["examples"], 0.90, 0.93),
)


def _library_before(root: Path, first_line: int) -> Path:
    """A copy of the notices whose labelled questions stop before line ``first_line``."""
    library = root / f"notices-{first_line}"
    seed = library / SEED_QUESTIONS.parent.name
    seed.mkdir(parents=True)
    for path in SEED_QUESTIONS.parent.iterdir():
        if path.suffix in (".txt", ".yml"):
            shutil.copy(path, seed)
    lines = SEED_QUESTIONS.read_text(encoding="utf-8").splitlines(keepends=True)
    (seed / SEED_QUESTIONS.name).write_text("".join(lines[: first_line - 1]), encoding="utf-8")
    return library


def _recall(retriever: Retriever, questions, weight: float, floor: float, hide: float | None) -> float:
    retriever.weights = {**DEFAULT_WEIGHTS, "examples": weight}
    retriever.example_floor, retriever.hide_similar = floor, hide

    def rank(question: str):
        return [h.chunk.anchor for h in retriever.search(question, top_k=3)], False

    return evaluate(questions, rank).recall1


def main() -> None:
    embedder = Embedder()
    labelled = SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
    workdir = Path(tempfile.mkdtemp(prefix="bench-labelled-"))
    rows = []
    try:
        for first, last, ordinal in SETS:
            questions_file = workdir / f"set-{ordinal}.tsv"
            questions_file.write_text("\n".join([labelled[0], *labelled[first - 1 : last]]) + "\n", encoding="utf-8")
            questions = [q for q in load_questions(questions_file) if not q.out_of_scope]
            # One build folder for all: each rebuild reuses the vectors of the questions before.
            retriever = Retriever(embedder, library_dir=_library_before(workdir, first), build_dir=workdir / "build")
            retriever.warm_up()
            rows.append((ordinal, len(questions), retriever.manifest["examples"],
                         [_recall(retriever, questions, *config[1:]) for config in CONFIGS]))
            print(ordinal, rows[-1][3], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    means = [statistics.mean(row[3][i] for row in rows) for i in range(len(CONFIGS))]
    lines = [
        "## Learning from labelled questions, replayed in time order (`bench/bench_labelled.py`)",
        "",
        "Each retired blind set, searched (ranking only) with only the questions labelled before it.",
        "recall@1 on its answerable questions. \"hide ≥ c\": labelled questions at least c close to the",
        "one asked are left out, as if nobody had asked anything like it before. The search's",
        f"default floor is {EXAMPLE_FLOOR:.2f}, its weight {DEFAULT_WEIGHTS['examples']:g}.",
        "",
        "| set | answerable | labelled before | " + " | ".join(c[0] for c in CONFIGS) + " |",
        "|---|---|---|" + "---|" * len(CONFIGS),
    ]
    for ordinal, n, before, recalls in rows:
        lines.append(f"| {ordinal} | {n} | {before} | " + " | ".join(f"{r:.3f}" for r in recalls) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{m:.3f}**" for m in means) + " |")
    write_section("labelled", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
