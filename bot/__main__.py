"""Staff console: ``python -m bot ask|shell|eval|index``.

A thin click layer over the objects the web server uses (bot.runtime.build_bot), so staff test
exactly what citizens get.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

import click

from bot.runtime import build_bot


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


def _print_debug(debug: dict, elapsed_ms: float) -> None:
    """What decided a turn, as the dialogue decided it (never recomputed)."""
    from index.search import RANKERS

    dim = lambda text: click.echo(click.style(text, dim=True))  # noqa: E731
    intent = debug.get("intent") or {}
    nearest = debug.get("nearest") or {}
    dim(f"  意图 intent: {intent.get('name')} ({intent.get('confidence')})  最近的例句 nearest: "
        f"{nearest.get('text')} ({nearest.get('similarity')})  动作 action: {debug.get('action')}  ({elapsed_ms:.0f} ms)")
    if debug.get("note"):
        dim(f"  说明 note: {debug['note']}")
    turn = debug.get("turn") or {}
    if turn.get("follow_up"):
        of = turn.get("of") or {}
        reading = turn.get("reading") or {}
        dim(f"  追问 follow-up: 是（{reading.get('kind')}），接着上一问“{of.get('question')}”（{of.get('label')}）")
    else:
        dim("  追问 follow-up: 否，按独立问题处理" + (f"（{turn['note']}）" if turn.get("note") else ""))
    if turn.get("searched"):
        dim(f"  检索的问题 searched: {turn['searched']}" + (f"  限于 within: {', '.join(turn['within'])}" if turn.get("within") else ""))
    if "abstain" in turn:
        dim(f"  范围判断 scope: {'不回答' if turn['abstain'] else '回答'} — {turn.get('decided_by')}")
    else:
        dim(f"  范围判断 scope: 不适用 — {turn.get('decided_by')}")
    hits = debug.get("hits") or []
    if hits:
        dim("  rank chunk                         fused " + "".join(f"{name + '(rank)':>15}" for name in RANKERS))
        for i, hit in enumerate(hits, 1):
            cells = "".join(f"{hit['scores'][name]:>10.3f}({hit['ranks'][name]:>2})" for name in RANKERS)
            click.echo(click.style(f"  {i:>4} {hit['anchor']:<12} {hit['title'][:14]:<16} {hit['fused']:.4f}{cells}", dim=True))
            if hit.get("labelled"):
                dim(f"       nearest labelled question: {hit['labelled']['question']} ({hit['labelled']['similarity']:.3f})")
    features = debug.get("features")
    if features:
        dim(f"  signals: {features}")


@cli.command()
@click.option("--debug", is_flag=True, help="Show, for each turn, the intent, whether it was read as a follow-up and of "
                                            "what, the question searched, the scope decision, and the top passages.")
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
        if not text.strip():
            continue
        started = time.perf_counter()
        messages = bot.dialogue.handle(sender, text, debug=debug)
        elapsed = (time.perf_counter() - started) * 1000
        for m in messages:
            click.echo(f"机器人> {m['text']}")
            for i, c in enumerate(m["custom"].get("citations", []), 1):
                click.echo(f"   [{i}] {c['path']} {c['heading']}  #{c['anchor']}")
            if m["custom"].get("suggestions"):
                click.echo("   您还可以问：" + " | ".join(m["custom"]["suggestions"]))
            if debug and m["custom"].get("debug"):
                _print_debug(m["custom"]["debug"], elapsed)


@cli.command(name="test-stories")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the figures and the failed stories as JSON.")
def test_stories(file: str | None, as_json: bool) -> None:
    """Run conversation tests (Rasa's test-story format; default bot/tests/test_stories.yml) through the
    embedded dialogue, and print the failed stories and the figures, as `rasa test` does."""
    from bot.stories import TUNING_STORIES, format_failed, load_stories, run_stories

    try:
        stories = load_stories(file or TUNING_STORIES)
    except ValueError as exc:
        raise click.UsageError(f"{exc}. 格式见 bot/tests/test_stories.yml / see bot/tests/test_stories.yml") from exc
    bot = _bot()
    bot.dialogue.warm_up()
    report = run_stories(bot.dialogue, stories)
    data = report.to_dict()
    if as_json:
        data["failed"] = [story.name for story, _ in report.failed()]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    failed = format_failed(report)
    if failed:
        click.echo("失败的故事 / failed stories:\n")
        click.echo(failed)
    click.echo(f"stories {data['stories']}, turns {data['turns']}")
    click.echo(f"turns right {data['turns_right']:.3f}  stories right {data['stories_right']:.3f}")
    click.echo(f"off-topic turns declined {data['off_topic_declined']:.3f} (of {data['off_topic_turns']}; "
               f"after a topic {data['off_topic_after_topic_declined']:.3f})")
    click.echo(f"follow-ups resolved {data['follow_ups_resolved']:.3f} (of {data['follow_ups']})")
    click.echo(f"intents heard as labelled {data['intent_accuracy']:.3f}")
    click.echo("turns right by intent: " + ", ".join(f"{k} {v}" for k, v in data["turns_right_by_intent"].items()))


@cli.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--doc", default=None, help="Ask as on this notice's page (several notices loaded).")
@click.option("--of", "of", default=None,
              help="The notice the questions are about (default: --doc, or the notice whose folder holds FILE); "
                   "a passage of another notice is then a miss.")
def eval_(file: str, as_json: bool, doc: str | None, of: str | None) -> None:
    """recall@1/@3, abstention and the misses over a question FILE (TSV: question, expected item or -)."""
    from bot.evaluate import answer_ranker, evaluate, load_questions

    try:
        questions = load_questions(file)
    except ValueError as exc:
        raise click.UsageError(f"{exc}. See tests/data/README.md for the format.") from exc
    bot = _bot()
    notices = bot.retriever.library.notices
    for given in (doc, of):
        if given is not None and given not in notices:
            raise click.UsageError(f"没有这份通报：{given} / no notice {given!r}")
    if of is None and doc is None and Path(file).resolve().parent.name in notices:
        of = Path(file).resolve().parent.name
    report = evaluate(questions, answer_ranker(bot.answerer, doc, of))
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
@click.option("--questions", "questions_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Labelled questions to learn from besides the NLU examples (never the held-out file); "
                   "default: every notice's questions.tsv.")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0.01, 0.99),
              help="Abstain at or above this probability of being out of scope.")
def train_scope(questions_file: str | None, threshold: float) -> None:
    """Learn when to abstain under the current embedding model; updates bot/data/scope_model.json."""
    from bot.evaluate import load_questions
    from bot.scope import MODEL_FILE, save_model

    if questions_file and "heldout" in questions_file:
        raise click.UsageError("不能用保留测试集训练 / never train on the held-out questions; use the tuning file.")
    bot = _bot()
    # The labelled questions are also the search's examples: each is searched without itself, as
    # a citizen's new question would be.
    bot.retriever.leave_one_out = True
    labelled = (load_questions(questions_file) if questions_file
                else [q for qs in bot.retriever.library.questions.values() for q in qs])
    questions = [(q.question, q.out_of_scope) for q in labelled]
    model = bot.answerer.policy.train(bot.retriever, questions, threshold)
    save_model(model, MODEL_FILE)
    click.echo(f"wrote {MODEL_FILE} for {model.embedding_model} ({model.trained_on}, threshold {threshold})")


@cli.command()
@click.option("--if-needed", is_flag=True, help="Only build when the index is missing, stale or damaged.")
@click.option("--quiet", is_flag=True, help="No progress bars (a server's background build).")
def index(if_needed: bool, quiet: bool) -> None:
    """(Re)build the search index, with progress. A running server keeps answering meanwhile and
    switches to the new index once it is built."""
    from index.embedding import ModelUnavailableError
    from index.store import IndexWriteError
    from knowledge.parser import NoticeParseError

    try:
        bot = build_bot({"PROGRESS": not quiet or None})
        started = time.perf_counter()
        manifest = bot.retriever.build_if_needed() if if_needed else bot.retriever.rebuild()
    except ModelUnavailableError as exc:
        raise click.UsageError(str(exc)) from exc
    except (IndexWriteError, NoticeParseError) as exc:  # a read-only or full disk, a broken notice
        raise click.ClickException(str(exc)) from exc
    if manifest is None:
        click.echo("索引已是最新 / index is current")
        return
    click.echo(
        f"索引已建好 / index built: {manifest['chunks']} chunks, {manifest['sentences']} sentences, "
        f"model {manifest['model']} (dim {manifest['dimension']}) in {time.perf_counter() - started:.1f}s"
    )


@cli.command(name="add-notice")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--doc", required=True, help="Its id, letters, digits and - (e.g. hexi-wjj-xuncha-2025).")
@click.option("--title", required=True, help="Its title: 关于…的通报.")
@click.option("--issuer", required=True, help="Who published it: 中共…党组.")
@click.option("--date", "date_", required=True, help="Publication date, YYYY-MM-DD.")
@click.option("--period-start", default=None, help="First day of the comment period (default: the date).")
@click.option("--period-end", required=True, help="Last day of the comment period, YYYY-MM-DD.")
@click.option("--area", multiple=True, help="A place under the issuer (repeat for each).")
@click.option("--field", "field_", default=None,
              help="The issuer's field, a file in knowledge/fields/ (e.g. health, culture-tourism-sports); "
                   "default: the common vocabulary only.")
def add_notice(file: str, doc: str, title: str, issuer: str, date_: str, period_start: str | None,
               period_end: str, area: tuple[str, ...], field_: str | None) -> None:
    """Add a notice to the library: write its folder, print the structure read, update the index.
    A running server picks the new index up by itself, every worker, without a restart."""
    from index.embedding import ModelUnavailableError
    from index.store import IndexWriteError
    from knowledge.fields import field_names
    from knowledge.parser import NoticeParseError, parse_notice
    from knowledge.store import NOTICES_DIR, describe, write_notice

    for name, value in (("--date", date_), ("--period-start", period_start), ("--period-end", period_end)):
        if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise click.UsageError(f"{name} 应为 YYYY-MM-DD：{value} / {name} must be YYYY-MM-DD")
    if field_ is not None and field_ not in field_names():
        raise click.UsageError(f"没有这个领域：{field_}；可选：{'、'.join(field_names())} / "
                               f"no field {field_!r}; choose one of {', '.join(field_names())} (knowledge/fields/)")
    try:
        raw = Path(file).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.UsageError("通报文件应为 UTF-8 文本。 / The notice must be UTF-8 text.") from exc
    folder = Path(os.environ.get("LIBRARY_DIR") or NOTICES_DIR)
    meta = {"doc": doc, "title": title, "issuer": issuer, "date": date_, "period_start": period_start or date_,
            "period_end": period_end, "source": str(file), "field": field_, "area": list(area)}
    try:
        lines, warnings = describe(parse_notice(raw, doc))
        write_notice(folder, raw, meta)
    except NoticeParseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已加入 / added: {folder / doc}")
    for line in lines:
        click.echo(line)
    for warning in warnings:
        click.echo(f"注意 / warning: {warning}")
    try:
        bot = build_bot({"PROGRESS": None})
        started = time.perf_counter()
        manifest = bot.retriever.build_if_needed()
    except ModelUnavailableError as exc:
        raise click.UsageError(str(exc)) from exc
    except (IndexWriteError, NoticeParseError) as exc:
        raise click.ClickException(str(exc)) from exc
    if manifest is not None:
        click.echo(f"索引已更新 / index updated: {manifest['chunks']} chunks in {time.perf_counter() - started:.1f}s")
    _say_scope_changes(bot.embedder.name, bot.retriever.library)


def _say_scope_changes(embedding_model: str, library) -> None:
    """Tell staff when the weights that decide whether to answer were learnt on other notices."""
    from bot.scope import changes_since, model_entry

    try:
        entry = model_entry(embedding_model) or {}
    except (OSError, ValueError):
        entry = {}
    changes = changes_since(entry.get("trained_on") or {}, library)
    if changes["current"]:
        return
    added = "、".join(changes.get("added") or [])
    click.echo("注意 / note: 判断是否回答的模型是在另一批通报上学习的" + (f"（新加了 {added}）" if added else "")
               + "；新通报在有已标注问题之前由不依赖已标注问题的模型判断。按现在的通报重新学习：python -m bot train-scope"
               + " / the scope weights were learnt on other notices; relearn them with `python -m bot train-scope`.")


@cli.group()
def db() -> None:
    """The conversation log's database (DATABASE_URL; unset: SQLite under var/)."""


def _database_url() -> str:
    from bot.convlog import DEFAULT_URL

    return os.environ.get("DATABASE_URL") or DEFAULT_URL


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Create or migrate the conversation log's tables (Alembic, to the newest schema)."""
    from bot.convlog import upgrade

    url = _database_url()
    try:
        upgrade(url)
    except Exception as exc:  # noqa: BLE001 — said plainly, not as a traceback
        raise click.ClickException(f"数据库无法升级：{exc} / could not migrate the database") from exc
    click.echo(f"数据库已是最新 / database up to date: {_safe_url(url)}")


@cli.group()
def staff() -> None:
    """Staff console accounts (in the conversation log's database, DATABASE_URL)."""


def _staff_accounts():
    """The accounts, in the log's database brought up to date."""
    from bot.convlog import upgrade
    from bot.staff import StaffAccounts

    url = _database_url()
    upgrade(url)
    return StaffAccounts(url)


@staff.command(name="add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line), not the terminal.")
def staff_add(name: str, password_stdin: bool) -> None:
    """Create the staff account NAME; the password is asked twice (at least 10 characters)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("密码 / password", hide_input=True, confirmation_prompt="再输一次 / again")
    try:
        _staff_accounts().add(name, password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"已创建账号 {name}，可在 /staff/ 登录。 / Account {name} created; sign in at /staff/.")


@staff.command(name="list")
def staff_list() -> None:
    """The staff accounts."""
    for name in _staff_accounts().names():
        click.echo(name)


@db.command(name="purge")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Keep this many days (default: LOG_RETENTION_DAYS, 180).")
def db_purge(days: float | None) -> None:
    """Delete the log's turns older than the retention period."""
    from bot.convlog import ConversationLog

    keep = days or float(os.environ.get("LOG_RETENTION_DAYS") or 180)
    removed = ConversationLog(_database_url(), retention_days=keep).purge(keep)
    click.echo(f"已删除 {removed} 条超过 {keep:g} 天的记录 / removed {removed} turns older than {keep:g} days")


@db.command(name="export")
@click.option("--since", default=None, help="From this day on (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
def db_export(since: str | None, fmt: str) -> None:
    """Print the log's turns (masked, as stored), for staff."""
    import datetime as _dt

    from bot.convlog import ConversationLog

    start = None
    if since:
        try:
            start = _dt.datetime.fromisoformat(since).replace(tzinfo=_dt.timezone.utc)
        except ValueError as exc:
            raise click.UsageError(f"--since 应为 YYYY-MM-DD：{since} / --since must be YYYY-MM-DD") from exc
    for line in ConversationLog(_database_url()).export(start, fmt):
        click.echo(line, nl=False)


def _safe_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)  # no password on screen


if __name__ == "__main__":
    cli()
