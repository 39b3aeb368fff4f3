"""Day-one quality (issue 17): notices staff have just added, with no labelled questions and no
aliases, answered and declined beside the seed, on blind sets written from each notice alone.

    python -m bench.bench_day_one        (writes the "day-one" section of bench/RESULTS.md)

The library is the seed (with its labelled questions) and the two fictional notices of other
bureaus (tests/data/library/: none labelled, no aliases). Each blind set is asked as the
widget asks it — through the embedded dialogue, each question the first turn of a new
conversation — on its notice's page (``metadata.doc``) and with no page; a passage of another
notice counts as a miss. The seed's set is also asked with the seed alone. Each set is measured
once and then retired (tests/data/README.md).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench._results import write_section
from bench._seed import SEED_DOC
from bot.evaluate import Report, evaluate
from bot.runtime import build_bot
from knowledge.questions import load_questions
from knowledge.store import NOTICES_DIR

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
NEW = ("hexi-wjj-xuncha-2025", "nanshan-jtj-xuncha-2024")
SETS = {SEED_DOC: DATA / "questions_heldout_19.tsv",
        **{doc: DATA / "library_heldout" / f"{doc}.round2.tsv" for doc in NEW}}


def _dialogue_ranker(bot, name: str, doc: str | None, of: str):
    """Each question as the first turn of a new conversation; a passage of another notice is
    another anchor; a "which notice?" reply is answered by clicking ``of``'s button."""
    count = [0]
    order = list(bot.answerer.library.meta)

    def rank(question: str):
        count[0] += 1
        sender = f"day-one-{name}-{count[0]}"
        metadata = {"doc": doc} if doc else None
        custom = bot.dialogue.handle(sender, question, metadata)[-1]["custom"]
        if custom.get("kind") == "choose_notice":
            chosen = custom["suggestions"][order.index(of)]
            custom = bot.dialogue.handle(sender, chosen, metadata)[-1]["custom"]
        declined = bool(custom.get("abstained")) or (custom.get("kind") == "chat" and not custom["citations"])
        anchors = [c["anchor"] if c.get("doc") in (None, of) else f"{c['doc']}:{c['anchor']}" for c in custom["citations"]]
        return anchors, declined

    return rank


def _row(name: str, report: Report) -> str:
    return (f"| {name} | {report.in_scope} / {report.out_of_scope} | {report.recall1:.3f} | "
            f"{report.kind_recall('colloquial'):.3f} | {report.kind_recall('numeric'):.3f} | "
            f"{report.abstention:.3f} | {report.false_abstention:.3f} |")


def _bot(root: Path, docs: tuple[str, ...], name: str):
    library = root / name
    shutil.copytree(NOTICES_DIR / SEED_DOC, library / SEED_DOC)
    for doc in docs:
        shutil.copytree(DATA / "library" / doc, library / doc)
    bot = build_bot({"LIBRARY_DIR": str(library), "INDEX_DIR": str(root / f"{name}-index")})
    bot.warm_up()
    return bot


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-day-one-"))
    rows, misses = [], []
    try:
        together = _bot(root, NEW, "all")
        for doc, path in SETS.items():
            questions = load_questions(path)
            for page in (doc, None):
                name = f"{doc} ({'its page' if page else 'no page'}, all notices)"
                report = evaluate(questions, _dialogue_ranker(together, f"{doc}-{page}", page, doc))
                rows.append(_row(name, report))
                misses.append((name, report.misses))
        alone = _bot(root, (), "seed")
        report = evaluate(load_questions(SETS[SEED_DOC]), _dialogue_ranker(alone, "alone", SEED_DOC, SEED_DOC))
        rows.append(_row(f"{SEED_DOC} (alone)", report))
        misses.append((f"{SEED_DOC} (alone)", report.misses))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    markdown = (
        "## Day-one quality: new notices with no labels or aliases (bench_day_one)\n\n"
        "Blind sets written from each notice alone (tests/data/README.md), asked through the embedded dialogue,\n"
        "each question a new conversation; the two new notices have no labelled questions and no aliases.\n"
        "Targets (issue 17): new notices recall@1 ≥ 0.90, colloquial ≥ 0.85, numeric ≥ 0.90, declined ≥ 0.90,\n"
        "false abstention ≤ 0.03; the seed (all loaded) recall@1 ≥ 0.95, colloquial ≥ 0.90, declined ≥ 0.93,\n"
        "false abstention ≤ 0.02.\n\n"
        "| set | in / out of scope | recall@1 | colloquial | numeric | declined | false abstention |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_section("day-one", markdown)
    print(markdown)
    for name, missed in misses:
        print(f"\n### misses: {name} ({len(missed)})")
        for m in missed:
            print(f"- [{m['kind']}] {m['question']} → expected {m['expected']}, got {m['got']}")


if __name__ == "__main__":
    main()
