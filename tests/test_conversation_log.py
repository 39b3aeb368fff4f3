"""The conversation log (issue 14), on SQLite and on a real PostgreSQL: one masked row per turn
with every field, 👍/👎 feedback, retention and export, migrations on an empty database, and a
database that is down costing the row, never the answer."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time

import pytest
import sqlalchemy as sa

from bot.convlog import ConversationLog, turns, upgrade
from tests.conftest import postgres_server

SEED = "qingyuan-wlj-xuncha-2025"
WEBHOOK, FEEDBACK = "/webhooks/rest/webhook", "/webhooks/rest/feedback"
PERSONAL = ("13812345678", "44180219900101123X", "zhang.san@example.com")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('convlog') / 'log.sqlite3'}"
    else:
        with postgres_server() as url:
            yield url


@pytest.fixture(scope="module")
def who(database_url):
    """Senders of this database's run (the session's bot remembers the other run's turns)."""
    scheme = database_url.split(":", 1)[0]
    return lambda name: f"{name}-{scheme}"


@pytest.fixture(scope="module")
def logged_app(bot, database_url):
    from server import create_app

    app = create_app({"TESTING": True, "BOT": bot, "CONVERSATION_LOG": "on", "DATABASE_URL": database_url})
    return app


def _rows(app) -> list[dict]:
    log = app.extensions["conversation_log"]
    assert log.flush(20)
    return list(log.rows())


def _row(app, turn_id: str) -> dict:
    return next(r for r in _rows(app) if r["turn_id"] == turn_id)


def test_migrations_run_on_an_empty_database_and_again(database_url):
    upgrade(database_url)
    upgrade(database_url)  # at head already: nothing to do
    columns = {c["name"] for c in sa.inspect(sa.create_engine(database_url)).get_columns("turns")}
    assert {c.name for c in turns.columns} <= columns


def test_a_turn_is_logged_with_every_field(logged_app, who):
    client = logged_app.test_client()
    reply = client.post(WEBHOOK, json={"sender": who("log-fields"), "message": "应急广播建设进展如何",
                                       "metadata": {"doc": SEED, "page": "https://www.example.gov.cn/xxgk/tz.html?a=1#x"}})
    assert reply.status_code == 200
    message = reply.get_json()[0]
    assert "debug" not in message["custom"]  # the log needs the reason; the citizen never sees the debug
    row = _row(logged_app, message["custom"]["turn_id"])
    assert row["sender"] == who("log-fields") and row["doc"] == SEED and row["question"] == "应急广播建设进展如何"
    assert row["intent"] == "ask_notice" and row["answered"] is True and row["kind"] == "search"
    assert row["reason"] and row["cited_doc"] == SEED and row["cited_anchors"].split(",")[0] == "item-16"
    assert row["top_score"] > 0 and row["latency_ms"] > 0 and row["page"] == "/xxgk/tz.html"
    at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=_dt.timezone.utc)
    assert abs((_dt.datetime.now(_dt.timezone.utc) - at).total_seconds()) < 120
    assert row["rating"] is None


def test_a_declined_turn_says_why(logged_app, who):
    message = logged_app.test_client().post(WEBHOOK, json={"sender": who("log-decline"), "message": "明天天气怎么样"}).get_json()[0]
    row = _row(logged_app, message["custom"]["turn_id"])
    assert row["answered"] is False and row["kind"] == "abstain" and row["reason"] and row["cited_anchors"] is None


def test_personal_data_never_reaches_the_database_the_log_or_the_debug(logged_app, caplog, database_url, who):
    question = f"我叫王小明，电话{PERSONAL[0]}，身份证{PERSONAL[1]}，邮箱{PERSONAL[2]}，应急广播建好了吗"
    with caplog.at_level(logging.DEBUG):
        reply = logged_app.test_client().post(WEBHOOK, json={"sender": who("log-mask"), "message": question,
                                                             "metadata": {"debug": True}})
    message = reply.get_json()[0]
    row = _row(logged_app, message["custom"]["turn_id"])
    for secret in (*PERSONAL, "王小明"):
        assert secret not in row["question"]
        assert secret not in caplog.text
        assert secret not in json.dumps(message["custom"].get("debug"), ensure_ascii=False)
    assert "[已隐去]" in row["question"] and "应急广播建好了吗" in row["question"]
    if database_url.startswith("sqlite:///"):  # nor anywhere in the file (or its write-ahead log)
        path = database_url.removeprefix("sqlite:///")
        raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if __import__("os").path.exists(p))
        assert not any(s.encode() in raw for s in (*PERSONAL, "王小明"))


def test_feedback_is_stored_with_its_turn_masked(logged_app, who):
    client = logged_app.test_client()
    message = client.post(WEBHOOK, json={"sender": who("log-fb"), "message": "旅游厕所建了多少座"}).get_json()[0]
    turn_id = message["custom"]["turn_id"]
    sent = client.post(FEEDBACK, json={"sender": who("log-fb"), "turn_id": turn_id, "rating": "down",
                                       "reason": "没回答我的问题", "comment": f"请打{PERSONAL[0]}联系我"})
    assert sent.status_code == 202
    row = _row(logged_app, turn_id)
    assert row["rating"] == "down" and row["feedback_reason"] == "没回答我的问题"
    assert PERSONAL[0] not in row["feedback_comment"] and "[已隐去]" in row["feedback_comment"]
    # no turn_id: the sender's last turn
    later = client.post(WEBHOOK, json={"sender": who("log-fb"), "message": "第16条"}).get_json()[0]
    assert client.post(FEEDBACK, json={"sender": who("log-fb"), "rating": "up"}).status_code == 202
    assert _row(logged_app, later["custom"]["turn_id"])["rating"] == "up"
    assert _row(logged_app, turn_id)["rating"] == "down"


@pytest.mark.parametrize("body, code", [
    ({"sender": "x", "rating": "meh"}, "invalid_rating"),
    ({"rating": "up"}, "missing_field"),
    ({"sender": "x", "rating": "up", "turn_id": "not-an-id"}, "invalid_turn_id"),
    ({"sender": "x", "rating": "down", "reason": "太慢"}, "invalid_reason"),
    ({"sender": "x", "rating": "down", "comment": "长" * 201}, "invalid_comment"),
    ([1, 2], "invalid_json"),
])
def test_bad_feedback_is_a_clear_4xx(logged_app, body, code):
    response = logged_app.test_client().post(FEEDBACK, json=body)
    assert response.status_code == 400
    data = response.get_json()
    assert data["error"] == code and data["message"] and data["detail"]


def test_retention_purges_old_turns_and_export_gives_csv_and_jsonl(database_url):
    log = ConversationLog(database_url, retention_days=30)
    old = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=400)
    with log.engine.begin() as conn:
        conn.execute(turns.insert().values(turn_id="0" * 32, at=old, sender="old", question="很久以前的问题",
                                           answered=True))
    assert "很久以前的问题" in "".join(log.export(fmt="csv"))
    assert log.purge() >= 1
    assert "很久以前的问题" not in "".join(log.export(fmt="csv"))
    lines = list(log.export(fmt="jsonl"))
    assert lines and all(json.loads(line)["turn_id"] for line in lines)
    header = next(iter(log.export(fmt="csv")))
    assert header.startswith("turn_id,at,sender,doc,question")


def test_a_database_that_is_down_costs_the_row_not_the_answer(bot):
    from server import create_app

    with postgres_server() as url:  # a server of its own, stopped before the question
        app = create_app({"TESTING": True, "BOT": bot, "CONVERSATION_LOG": "on", "DATABASE_URL": url})
    # the server is stopped now
    client = app.test_client()
    started = time.monotonic()
    reply = client.post(WEBHOOK, json={"sender": "down", "message": "应急广播建设进展如何"})
    assert reply.status_code == 200 and reply.get_json()[0]["custom"]["citations"][0]["anchor"] == "item-16"
    assert time.monotonic() - started < 10
    app.extensions["conversation_log"].flush(30)
    health = client.get("/healthz").get_json()
    assert health["conversation_log"]["failed"] >= 1 and health["conversation_log"]["last_error"]


@pytest.mark.slow
def test_under_gunicorn_with_two_workers_and_eight_clients_no_turn_is_lost(bot, index_dir, tmp_path):
    import os
    import shutil
    import threading
    import urllib.request

    from bench._serve import gunicorn

    own = tmp_path / "index"
    shutil.copytree(index_dir, own)
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    env = dict(os.environ, INDEX_DIR=str(own), DATABASE_URL=url)
    questions = ["应急广播建设进展如何", "旅游厕所建了多少座", "明天天气怎么样", "第16条", "景区安全谁来管"]
    sent, errors = [], []

    def client(n: int, base: str) -> None:
        for k in range(10):
            body = json.dumps({"sender": f"gun-{n}", "message": f"{questions[k % 5]}{'？' * (k // 5)}"}).encode()
            request = urllib.request.Request(base + WEBHOOK, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    sent.append(json.loads(response.read())[-1]["custom"]["turn_id"])
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        threads = [threading.Thread(target=client, args=(n, base)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        engine = sa.create_engine(url)
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                stored = set(conn.execute(sa.select(turns.c.turn_id)).scalars())
            if set(sent) <= stored or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert not errors and len(sent) == 80
    assert set(sent) <= stored and len(stored) == 80


def test_staff_commands_upgrade_purge_and_export(tmp_path):
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = dict(os.environ, DATABASE_URL=url)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "bot", "db", *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))

    assert run("upgrade").returncode == 0
    log = ConversationLog(url)
    now = _dt.datetime.now(_dt.timezone.utc)
    with log.engine.begin() as conn:
        for k, age in enumerate((1, 10, 400)):
            conn.execute(turns.insert().values(turn_id=f"{k:032x}", at=now - _dt.timedelta(days=age), sender=f"s{k}",
                                               question=f"问题{age}天前", answered=bool(k % 2)))
    exported = run("export", "--format", "jsonl")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 3
    recent = run("export", "--since", (now - _dt.timedelta(days=5)).date().isoformat(), "--format", "csv")
    assert recent.stdout.splitlines()[0].startswith("turn_id,") and "问题1天前" in recent.stdout
    assert "问题10天前" not in recent.stdout
    purged = run("purge", "--days", "30")
    assert purged.returncode == 0 and "1" in purged.stdout
    assert [r["question"] for r in log.rows()] == ["问题1天前", "问题10天前"]
    bad = run("export", "--since", "昨天")
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
