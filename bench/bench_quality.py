"""Retrieval and abstention quality on our question sets, next to plain BM25 and dense-only search.

Run: ``python -m bench.bench_quality``. Writes the ``quality`` section of bench/RESULTS.md.
The held-out file is only ever measured here, never tuned on.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench._results import write_section
from bot.evaluate import Report, answer_ranker, evaluate, load_questions
from bot.runtime import build_bot
from index.search import DEFAULT_WEIGHTS, Retriever
from knowledge.store import NOTICE_META, NOTICE_QUESTIONS, NOTICE_TEXT, NOTICES_DIR, notice_files
from bench._seed import SEED_QUESTIONS

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SPLITS = {"tuning": SEED_QUESTIONS, "held-out": DATA / "questions_heldout.tsv"}


def _ranker_only(retriever, weights: dict, threshold: float | None = None, ranker: str = "dense"):
    """A baseline: one ranker's order, abstaining below a score threshold (if given)."""

    def rank(question: str):
        saved = retriever.weights
        retriever.weights = weights
        try:
            hits = retriever.search(question, top_k=3)
        finally:
            retriever.weights = saved
        abstain = threshold is not None and hits[0].scores[ranker] < threshold
        return [h.chunk.anchor for h in hits], abstain

    return rank


def _plain_retriever(embedder, root: Path) -> Retriever:
    """The same index without the staff's aliases and synonyms (the labelled questions stay, for
    the aliases' ablation; the single-ranker baselines never read them)."""
    library = root / "notices"
    library.mkdir()
    for text, meta_file, questions in notice_files(NOTICES_DIR):
        own = library / text.parent.name
        own.mkdir()
        shutil.copy(text, own / NOTICE_TEXT)
        if questions.exists():
            shutil.copy(questions, own / NOTICE_QUESTIONS)
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
        meta.pop("aliases", None)
        (own / NOTICE_META).write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    retriever = Retriever(embedder, library_dir=library, build_dir=root / "build", synonyms={})
    retriever.warm_up()
    return retriever


def _search_ranker(retriever):
    """Ranking only: the search's order, never abstaining (for ablations)."""

    def rank(question: str):
        return [h.chunk.anchor for h in retriever.search(question, top_k=3)], False

    return rank


def _scope_cross_validation(bot, questions, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """Abstention and false abstention of the scope model learnt without the question judged:
    the tuning figures are otherwise figures on the model's own training data."""
    from bot.scope import abstains, fit

    policy, retriever = bot.answerer.policy, bot.retriever
    policy.warm_up(retriever)
    X, labels, nlu = policy.examples(retriever, [(q.question, q.out_of_scope) for q in questions])
    base_rows, base_y, rows, y = X[:nlu], labels[:nlu], X[nlu:], labels[nlu:]
    fold = np.random.RandomState(seed).randint(0, folds, len(questions))
    abstain = np.zeros(len(questions), dtype=bool)
    for f in range(folds):
        train = fold != f
        model = fit(np.vstack([base_rows, rows[train]]), np.concatenate([base_y, y[train]]),
                    policy.threshold, "cv", {})
        for i in np.where(fold == f)[0]:
            abstain[i] = abstains(model, rows[i], policy.threshold)
    return float(abstain[y == 1].mean()), float(abstain[y == 0].mean())


def _dialogue_ranker(dialogue, name: str):
    """What the widget gets: each question as the first turn of a new conversation (a sender id
    of its own, never one an earlier question used, or it would read as a follow-up).

    A small-talk reply ("你是机器人吗" → "我是…问答助手") quotes nothing from the notice: it
    counts as declining, as an abstention does — right for an out-of-scope question, a miss and a
    false abstention for an in-scope one."""
    count = [0]

    def rank(question: str):
        count[0] += 1
        message = dialogue.handle(f"bench-quality-{name}-{count[0]}", question)[0]
        custom = message["custom"]
        declined = bool(custom.get("abstained")) or (custom.get("kind") == "chat" and not custom["citations"])
        return [c["anchor"] for c in custom["citations"]], declined

    return rank


def _best_threshold(retriever, questions, ranker: str) -> float:
    """The cosine threshold that best separates in/out of scope on the tuning questions."""
    tops = []
    for q in questions:
        hit = retriever.search(q.question, top_k=1)[0]
        tops.append((hit.scores[ranker], q.out_of_scope))
    best, best_t = -1.0, 0.0
    for t in np.arange(0.80, 0.95, 0.0025):
        oos = [s < t for s, o in tops if o]
        ins = [s < t for s, o in tops if not o]
        score = np.mean(oos) - 3 * np.mean(ins)  # a false abstention costs more than a miss
        if score > best:
            best, best_t = score, float(t)
    return best_t


def _row(name: str, report: Report, abstains: bool) -> str:
    a = f"{report.abstention:.3f}" if abstains else "—"
    fa = f"{report.false_abstention:.3f}" if abstains else "—"
    return (
        f"| {name} | {report.recall1:.3f} | {report.kind_recall('colloquial'):.3f} | "
        f"{report.kind_recall('numeric'):.3f} | {report.kind_recall('traditional'):.3f} | "
        f"{report.recall3:.3f} | {a} | {fa} |"
    )


def main() -> None:
    bot = build_bot()
    bot.warm_up()
    retriever = bot.retriever
    tune = load_questions(SPLITS["tuning"])
    workdir = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        plain = _plain_retriever(bot.embedder, workdir)
        _report(bot, retriever, plain, tune)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report(bot, retriever, plain, tune) -> None:
    dense_t = _best_threshold(plain, tune, "dense")
    rrf = Retriever(bot.embedder, build_dir=retriever.build_dir, fusion="rrf")
    no_aliases = Retriever(bot.embedder, library_dir=plain.library_dir, build_dir=plain.build_dir)
    no_examples = Retriever(bot.embedder, build_dir=retriever.build_dir, weights={**DEFAULT_WEIGHTS, "examples": 0.0})
    searchers = (retriever, rrf, no_aliases, no_examples)
    # The tuning questions are the labelled questions: each is judged without itself.
    for searcher in searchers:
        searcher.leave_one_out = True
    cv_abstention, cv_false = _scope_cross_validation(bot, tune)
    lines = [
        "## Retrieval and abstention quality (`bench/bench_quality.py`)",
        "",
        "Question sets in `tests/data/` (see its README): colloquial paraphrases, numeric facts,",
        "Traditional Chinese, structure and out-of-scope questions. The held-out file is never tuned on;",
        "it was written blind, by an author who never saw the bot, its code or its word lists.",
        "recall@1 counts a question right when the first cited passage is the expected one (and the bot",
        "did not abstain); abstention is the share of out-of-scope questions declined; false abstention",
        "the share of answerable ones declined. Baselines and ablations search the notice alone (no",
        "staff aliases, no synonyms) unless the row says otherwise; ablation rows rank only (they never",
        "abstain), so compare them with the search-only row of ours. They run in the bot's process, whose",
        "jieba dictionary already holds the notice's headings, aliases and synonyms as words.",
        "The tuning questions are the notice's labelled questions (`knowledge/notices/*.questions.tsv`),",
        "which the search learns from: on them each question is judged without itself (leave-one-out).",
        "",
    ]
    misses = []
    for split, path in SPLITS.items():
        questions = load_questions(path)
        for searcher in searchers:
            searcher.leave_one_out = split == "tuning"
        kinds = {}
        for q in questions:
            kinds[q.kind] = kinds.get(q.kind, 0) + 1
        started = time.perf_counter()
        ours = evaluate(questions, answer_ranker(bot.answerer))
        elapsed = time.perf_counter() - started
        dialogue = evaluate(questions, _dialogue_ranker(bot.dialogue, split))
        search_only = evaluate(questions, _search_ranker(retriever))
        without_aliases = evaluate(questions, _search_ranker(no_aliases))
        without_examples = evaluate(questions, _search_ranker(no_examples))
        with_rrf = evaluate(questions, _search_ranker(rrf))
        bm25 = evaluate(questions, _ranker_only(plain, {"bm25": 1.0}))
        dense = evaluate(questions, _ranker_only(plain, {"dense": 1.0}))
        dense_thr = evaluate(questions, _ranker_only(plain, {"dense": 1.0}, dense_t, "dense"))
        lines += [
            f"### {split} ({len(questions)} questions: "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")",
            "",
            "| system | recall@1 | colloquial | numeric | traditional | recall@3 | abstention | false abstention |",
            "|---|---|---|---|---|---|---|---|",
            _row("**hybrid + scope model (ours)**", ours, True),
            _row("ours through the embedded dialogue (intents first, as the widget)", dialogue, True),
            _row("ours, search only (never abstains)", search_only, False),
            _row("ablation: ours without the staff aliases (search only)", without_aliases, False),
            _row("ablation: ours without the labelled questions (search only)", without_examples, False),
            _row("ablation: ours with reciprocal-rank fusion (search only)", with_rrf, False),
            _row("plain BM25 (jieba words)", bm25, False),
            _row("dense only (e5-small, FAISS)", dense, False),
            _row(f"dense only, abstain below cosine {dense_t:.4f}", dense_thr, True),
            "",
            f"Ours answered {len(questions)} questions in {elapsed:.1f} s.",
            "",
        ]
        if split == "tuning":
            lines += [
                "The scope model is learnt on these questions, so its tuning figures are optimistic; "
                f"5-fold cross-validated on them it abstains on **{cv_abstention:.3f}** of the out-of-scope "
                f"questions with **{cv_false:.3f}** false abstention.",
                "",
            ]
        if split == "held-out":
            misses = ours.misses
    lines += ["### What the held-out set still gets wrong", ""]
    for m in misses:
        lines.append(f"- [{m['kind']}] {m['question']} — expected `{m['expected']}`, got `{', '.join(m['got'])}`")
    lines += [
        "",
        f"The dense-only threshold ({dense_t:.4f}) is the best single cut on the tuning set: it shows why a",
        "similarity threshold alone cannot separate answerable from unanswerable questions.",
        "",
        "History (tests/data/README.md): each held-out set is retired into the tuning file once its",
        "misses have been read. The first (135 questions, written with the tuning set) measured recall@1",
        "0.860, colloquial 0.744, abstention 0.857, false abstention 0.028, before the aliases, the",
        "`about` ranker, score fusion and the foreign-name signal. The second (154, written blind)",
        "measured recall@1 0.917, colloquial 0.818, abstention 0.559, false abstention 0.042 (search",
        "alone 0.958 / 0.909), before the answer-type check and the cleaner name signal. The third",
        "(147, written blind) measured recall@1 0.939, colloquial 0.927, abstention 0.562, false",
        "abstention 0.026 (search alone 0.957 / 0.945), before phone, place and e-mail questions were",
        "checked against the passage, decisive signals and the passage-coverage signal. The fourth",
        "(148, written blind) measured recall@1 0.897, colloquial 0.836, abstention 0.774, false",
        "abstention 0.034 (search alone 0.923 / 0.873), before the last-clause and yes/no readings.",
        "The fifth (152, written blind) measured recall@1 0.941, colloquial 0.891, abstention 0.818,",
        "false abstention 0.017 (search alone 0.958 / 0.909), before counts had to stand in a sentence",
        "about what is counted. The sixth (146, written blind) measured recall@1 0.992, colloquial",
        "0.982, abstention 0.786, false abstention 0.008 (search alone 1.000 / 1.000), before a",
        "service cue had to meet the question's words in the passage to be excused. The seventh (145,",
        "written blind) measured recall@1 0.939, colloquial 0.891, abstention 0.833, false abstention",
        "0.000 (search alone 0.948 / 0.909), before the review fixes and the ordinal signal. The",
        "eighth (145, written blind) measured recall@1 0.938, colloquial 0.909, abstention 0.818, false",
        "abstention 0.018 (search alone 0.955 / 0.927), before places and counts had to stand in a",
        "sentence about the subject, which-place asks, and decisive foreign names and rounds. The",
        "dialogue row then also began to count a small-talk reply to an out-of-scope question as",
        "declining. The ninth (140, written blind) measured recall@1 0.928, colloquial 0.870,",
        "abstention 0.724, false abstention 0.027 (search alone 0.946 / 0.907), before relative rounds",
        "(上一轮, 下一次), asks for a person or a list of names, and words jieba glued together. The",
        "tenth (141, written blind) measured recall@1 0.908, colloquial 0.836, abstention 0.969, false",
        "abstention 0.028 (search alone 0.927 / 0.855), the first to meet both abstention targets,",
        "before 在哪个…中 and 花多少是怎么定的 were read as the asks they are. The eleventh (133,",
        "written blind) measured recall@1 0.943, colloquial 0.909, abstention 0.857, false abstention",
        "0.019 (search alone 0.962 / 0.927), before 第五巡察组 counted as another group, 在哪项工作中",
        "as no place, and 换证 as a personal service. The twelfth (138, written blind) measured recall@1",
        "0.945, colloquial 0.907, abstention 0.931, false abstention 0.018 (search alone 0.954 / 0.926),",
        "before who/whether asks left the overview reply and a yes/no about e-mail use the contact one.",
        "The thirteenth (132, written blind) measured recall@1 0.895, colloquial 0.836, abstention",
        "0.852, false abstention 0.010 (search alone 0.905 / 0.855). The fourteenth (135, written",
        "blind) measured recall@1 0.944, colloquial 0.889, abstention 0.857, false abstention 0.000",
        "(search alone 0.944 / 0.889), before 哪些村, 其他巡察组 and 多久一回 were read as asks. The",
        "fifteenth (134, written blind) measured recall@1 0.915, colloquial 0.855, abstention 0.821,",
        "false abstention 0.009 (search alone 0.915), before 英德市文广旅体局 counted as another office",
        "and 在哪条路 as asking where. The sixteenth (125, written blind; 30 questions equal to labelled",
        "ones dropped unread), the first measured with the search learning from the labelled questions,",
        "measured recall@1 0.980, colloquial 0.964, abstention 1.000, false abstention 0.000 (search",
        "alone 0.980; without the labelled questions 0.960). The seventeenth (132, written blind; 23",
        "dropped) measured recall@1 0.990, colloquial 0.982, abstention 0.964, false abstention 0.000",
        "(without the labelled questions 0.952), before a review moved the floor from 0.88 to 0.90 and",
        "made nearness to labelled questions per notice. The current (eighteenth) set was written blind;",
        "its 30 questions equal to labelled ones were dropped unread.",
    ]
    write_section("quality", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
