"""Staff console: ``python -m bot ask|shell|eval|index``.

A thin click layer over the objects the web server uses (bot.runtime.build_bot), so staff test
exactly what citizens get.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import click

from bot.runtime import build_bot
from knowledge.store import SEED_QUESTIONS


def _bot(progress: bool = False):
    from index.embedding import ModelUnavailableError

    try:
        bot = build_bot({"PROGRESS": progress or None})
        bot.retriever.warm_up()
        return bot
    except ModelUnavailableError as exc:
        raise click.UsageError(str(exc)) from exc


def _print_answer(answer) -> None:
    click.echo(answer.text)
    if answer.citations:
        click.echo("\n引用 / citations:")
        for i, c in enumerate(answer.citations[:3], 1):
            click.echo(f"  [{i}] {c.path} {c.heading}  (score {c.score:.4f}, #{c.anchor})")
    if answer.suggestions:
        click.echo("\n您还可以问：" + " | ".join(answer.suggestions))


@click.group()
def cli() -> None:
    """整改通报问答机器人 — staff console (问答、调试、评测、建索引)."""


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per answer (the tools' contract).")
def ask(question: str | None, as_json: bool) -> None:
    """Answer QUESTION; with no QUESTION, answer each line of standard input (JSON lines with --json)."""
    bot = _bot()
    questions = [question] if question is not None else (line.rstrip("\n") for line in sys.stdin)
    for q in questions:
        if question is None and not q.strip():
            continue
        answer = bot.answerer.answer(q)
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
            sys.stdout.flush()
        else:
            _print_answer(answer)
            if question is None:
                click.echo("-" * 40)


def _debug_table(bot, text: str) -> None:
    from index.search import RANKERS

    result = bot.retriever.search_full(text, top_k=5)
    header = "  rank chunk                         fused " + "".join(f"{name + '(rank)':>15}" for name in RANKERS)
    click.echo(click.style(header, dim=True))
    for i, hit in enumerate(result.hits, 1):
        r, s = hit.ranks, hit.scores
        cells = "".join(f"{s[name]:>10.3f}({r[name]:>2})" for name in RANKERS)
        click.echo(f"  {i:>4} {hit.chunk.anchor:<12} {hit.chunk.title[:14]:<16} {hit.score:.4f}{cells}")
        nearest = bot.retriever.nearest_labelled(result, hit.chunk)
        if nearest:
            click.echo(click.style(f"       nearest labelled question: {nearest[0]} ({nearest[1]:.3f})", dim=True))
    abstain, features = bot.answerer.policy.decide(result, bot.retriever)
    click.echo(click.style(f"  scope: abstain={abstain} {features}; words: {result.query.words}", dim=True))


@cli.command()
@click.option("--debug", is_flag=True, help="Show intent, and for the top 5 chunks each ranker's rank and score.")
@click.option("--sender", default=None, help="Conversation id (default: a new one).")
def shell(debug: bool, sender: str | None) -> None:
    """Chat like `rasa shell`, through the same dialogue citizens use. /quit ends, /new restarts."""
    bot = _bot()
    bot.dialogue.warm_up()
    sender = sender or f"shell-{uuid.uuid4().hex[:8]}"
    try:
        import readline  # noqa: F401  (history and line editing)
    except ImportError:
        pass
    click.echo("整改通报问答机器人 — 输入问题，/new 开始新对话，/quit 退出。")
    while True:
        try:
            text = input("您> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            break
        if text.strip() in ("/quit", "/exit", "/q"):
            break
        if text.strip() == "/new":
            bot.dialogue.reset(sender)
            click.echo("（已开始新对话）")
            continue
        started = time.perf_counter()
        messages = bot.dialogue.handle(sender, text)
        elapsed = (time.perf_counter() - started) * 1000
        for m in messages:
            click.echo(f"机器人> {m['text']}")
            for i, c in enumerate(m["custom"].get("citations", []), 1):
                click.echo(f"   [{i}] {c['path']} {c['heading']}  #{c['anchor']}")
            if m["custom"].get("suggestions"):
                click.echo("   您还可以问：" + " | ".join(m["custom"]["suggestions"]))
        if debug and text.strip():
            parse = bot.dialogue.parse(text)
            click.echo(click.style(f"  intent: {parse['intent']}  nearest: {parse.get('nearest')}  ({elapsed:.0f} ms)", dim=True))
            _debug_table(bot, text)


@cli.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_(file: str, as_json: bool) -> None:
    """recall@1/@3, abstention and the misses over a question FILE (TSV: question, expected item or -)."""
    from bot.evaluate import answer_ranker, evaluate, load_questions

    try:
        questions = load_questions(file)
    except ValueError as exc:
        raise click.UsageError(f"{exc}. See tests/data/README.md for the format.") from exc
    bot = _bot()
    report = evaluate(questions, answer_ranker(bot.answerer))
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"questions {data['questions']} (in scope {data['in_scope']}, out of scope {data['out_of_scope']})")
    click.echo(f"recall@1 {data['recall@1']:.3f}  recall@3 {data['recall@3']:.3f}")
    click.echo(f"abstention on out-of-scope {data['abstention']:.3f}  false abstention {data['false_abstention']:.3f}")
    click.echo("recall@1 by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in data["recall@1_by_kind"].items()))
    if data["misses"]:
        click.echo(f"\nmisses ({len(data['misses'])}):")
        for m in data["misses"]:
            click.echo(f"  [{m['kind']}] {m['question']}  expected {m['expected']}  got {m['got']}")


@cli.command(name="train-scope")
@click.option("--questions", "questions_file", default=str(SEED_QUESTIONS), show_default=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Labelled questions to learn from besides the NLU examples (never the held-out file).")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0.01, 0.99),
              help="Abstain at or above this probability of being out of scope.")
def train_scope(questions_file: str, threshold: float) -> None:
    """Learn when to abstain under the current embedding model; updates bot/data/scope_model.json."""
    from bot.evaluate import load_questions
    from bot.scope import MODEL_FILE, save_model

    if "heldout" in questions_file:
        raise click.UsageError("不能用保留测试集训练 / never train on the held-out questions; use the tuning file.")
    bot = _bot()
    # The labelled questions are also the search's examples: each is searched without itself, as
    # a citizen's new question would be.
    bot.retriever.leave_one_out = True
    questions = [(q.question, q.out_of_scope) for q in load_questions(questions_file)]
    model = bot.answerer.policy.train(bot.retriever, questions, threshold)
    save_model(model, MODEL_FILE)
    click.echo(f"wrote {MODEL_FILE} for {model.embedding_model} ({model.trained_on}, threshold {threshold})")


@cli.command()
@click.option("--if-needed", is_flag=True, help="Only build when the index is missing or stale.")
def index(if_needed: bool) -> None:
    """(Re)build the search index, with progress."""
    from index.embedding import ModelUnavailableError

    try:
        bot = build_bot({"PROGRESS": True})
        if if_needed and bot.retriever.is_current():
            click.echo("索引已是最新 / index is current")
            return
        started = time.perf_counter()
        manifest = bot.retriever.rebuild()
    except ModelUnavailableError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(
        f"索引已建好 / index built: {manifest['chunks']} chunks, {manifest['sentences']} sentences, "
        f"model {manifest['model']} (dim {manifest['dimension']}) in {time.perf_counter() - started:.1f}s"
    )


if __name__ == "__main__":
    cli()
