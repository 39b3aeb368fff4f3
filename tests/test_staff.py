"""The staff console's API (issue 16), in-process against the real bot, a real SQLite database
and a copy of the notices: sign-in, its throttle and its cookie, CSRF, no-store, 试一试's plain
explanation, what citizens asked, labels and their conflicts and undo, the CSV, the chart, a
notice's upload, and the `staff add` command."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.store import NOTICES_DIR
from tests.conftest import postgres_server

REPO = Path(__file__).resolve().parents[1]
SEED = "qingyuan-wlj-xuncha-2025"
PASSWORD = "a-long-staff-password"
HEXI = REPO / "tests" / "data" / "library" / "hexi-wjj-xuncha-2025"

pytestmark = pytest.mark.slow


@pytest.fixture()
def site(bot, tmp_path):
    """The app over the session's bot, its log and staff tables in a temp SQLite file, its
    labels written into a copy of the notices."""
    return _site(bot, tmp_path, f"sqlite:///{tmp_path / 'log.sqlite3'}")


def _site(bot, tmp_path, url: str):
    from bot.convlog import upgrade
    from bot.staff import StaffAccounts
    from server import create_app

    library = tmp_path / "notices"
    shutil.copytree(NOTICES_DIR, library)
    upgrade(url)
    StaffAccounts(url).add("王芳", PASSWORD)
    app = create_app({"TESTING": True, "BOT": bot, "DATABASE_URL": url, "LIBRARY_DIR": str(library),
                      "CONVERSATION_LOG": "on", "RATE_LIMITS": "off"})
    app.library = library
    return app


def _signed_in(app):
    client = app.test_client()
    reply = client.post("/staff/api/login", json={"username": "王芳", "password": PASSWORD})
    assert reply.status_code == 200, reply.json
    client.environ_base["HTTP_X_CSRFTOKEN"] = reply.json["csrf_token"]
    return client


def _citizen(app, sender: str, *questions: str) -> list[dict]:
    client = app.test_client()
    out = [client.post("/webhooks/rest/webhook", json={"sender": sender, "message": q}).json[-1] for q in questions]
    app.extensions["conversation_log"].flush()
    return out


API_ROUTES = [("GET", "/staff/api/turns"), ("GET", "/staff/api/turns.csv"), ("GET", "/staff/api/chart.svg"),
              ("GET", "/staff/api/pending"), ("GET", "/staff/api/labels"), ("GET", "/staff/api/notices"),
              ("GET", "/staff/api/items"), ("POST", "/staff/api/try"), ("POST", "/staff/api/labels"),
              ("DELETE", "/staff/api/labels/1"), ("POST", "/staff/api/notices/preview"), ("POST", "/staff/api/notices")]


@pytest.mark.parametrize("method, path", API_ROUTES)
def test_without_a_session_every_api_route_is_401_json(site, method, path):
    reply = site.test_client().open(path, method=method, json={})
    assert reply.status_code == 401 and reply.json["error"] == "not_signed_in"
    assert reply.json["message"] and reply.json["detail"]


def test_the_console_without_a_session_goes_to_sign_in_and_nothing_is_cached(site):
    client = site.test_client()
    reply = client.get("/staff/")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/staff/login")
    page = client.get("/staff/login")
    assert page.status_code == 200 and "工作人员登录" in page.get_data(as_text=True)
    for response in (reply, page, client.get("/staff/api/turns")):
        assert response.headers["Cache-Control"] == "no-store"
    signed = _signed_in(site)
    console = signed.get("/staff/")
    assert console.status_code == 200 and console.headers["Cache-Control"] == "no-store"
    assert "试一试" in console.get_data(as_text=True)


def test_the_session_cookie_is_httponly_and_lax_and_secure_when_asked(site, bot, tmp_path):
    reply = site.test_client().post("/staff/api/login", json={"username": "王芳", "password": PASSWORD})
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    from server import create_app

    secure = create_app({"TESTING": True, "BOT": bot, "DATABASE_URL": site.config["DATABASE_URL"],
                         "SESSION_COOKIE_SECURE": "1"})
    reply = secure.test_client().post("/staff/api/login", json={"username": "王芳", "password": PASSWORD})
    assert "Secure" in reply.headers["Set-Cookie"]


def test_wrong_passwords_are_refused_then_throttled_per_account_and_per_client(site):
    client = site.test_client()
    for _ in range(5):
        wrong = client.post("/staff/api/login", json={"username": "王芳", "password": "not-the-password"})
        assert wrong.status_code == 401 and wrong.json["message"] == "账号或密码不正确。"
    # the right password no longer opens this account for a while
    throttled = client.post("/staff/api/login", json={"username": "王芳", "password": PASSWORD})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    # one client trying many names is throttled too
    other = site.test_client()
    for n in range(20):  # STAFF_SIGNIN_PER_CLIENT: 20 per 15 minutes
        other.post("/staff/api/login", json={"username": f"guess{n}", "password": "x" * 12},
                   environ_base={"REMOTE_ADDR": "10.0.0.9"})
    refused = other.post("/staff/api/login", json={"username": "guess99", "password": "x" * 12},
                         environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert refused.status_code == 429


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_change_without_the_right_csrf_token_is_refused_and_nothing_is_written(site, token):
    client = _signed_in(site)
    if token is None:
        del client.environ_base["HTTP_X_CSRFTOKEN"]
    else:
        client.environ_base["HTTP_X_CSRFTOKEN"] = token
    before = (site.library / SEED / "questions.tsv").read_text(encoding="utf-8")
    reply = client.post("/staff/api/labels", json={"question": "图书馆几点关门", "doc": SEED, "anchor": "-"})
    assert reply.status_code == 403 and reply.json["error"] == "csrf_failed"
    assert (site.library / SEED / "questions.tsv").read_text(encoding="utf-8") == before


@pytest.mark.parametrize("turns, words", [
    (["应急广播建设进展如何"], ["找到", "第16条", "“应急广播”", "把握："]),
    (["明天天气怎么样"], ["没有回答：", "当下"]),
    (["你们整改就是走过场"], ["批评或投诉", "没有检索通报"]),
    (["应急广播建设进展如何", "那连南呢？"], ["这是追问", "“应急广播建设进展如何”", "第16条", "连南"]),
])
def test_try_it_gives_the_widgets_reply_and_a_plain_chinese_explanation(site, turns, words):
    client = _signed_in(site)
    sender = f"try-{hash(tuple(turns))}"
    for text in turns:
        reply = client.post("/staff/api/try", json={"sender": sender, "message": text})
    assert reply.status_code == 200
    summary = reply.json["explanation"]["summary"]
    for word in words:
        assert word in summary, summary
    assert reply.json["messages"] and "debug" not in reply.json["messages"][0]["custom"]
    assert "turn" in reply.json["details"]  # the full table, behind 详细
    # staff trying answers are not citizens: nothing of it is in the log
    site.extensions["conversation_log"].flush()
    assert client.get("/staff/api/turns").json["total"] == 0


def test_a_declined_question_is_to_teach_and_one_label_is_in_the_notices_questions(site):
    declined = _citizen(site, "citizen-1", "图书馆的咖啡好不好喝", "图书馆的咖啡好喝吗")
    assert all(m["custom"]["abstained"] for m in declined)
    client = _signed_in(site)
    turns = client.get("/staff/api/turns?declined=1").json
    assert turns["total"] == 2 and {r["question"] for r in turns["rows"]} == {"图书馆的咖啡好不好喝", "图书馆的咖啡好喝吗"}
    groups = client.get("/staff/api/pending").json["groups"]
    coffee = [g for g in groups if "咖啡" in g["question"]]
    assert len(coffee) == 1 and coffee[0]["count"] == 2  # near-duplicates, one group
    items = client.get(f"/staff/api/items?doc={SEED}").json
    assert {"anchor": "item-10"}.items() <= next(i for i in items if i["anchor"] == "item-10").items()
    assert all(i["label"] and i["first"] for i in items)

    made = client.post("/staff/api/labels", json={"question": coffee[0]["question"], "doc": SEED, "anchor": "-"})
    assert made.status_code == 201 and made.json["label"]["by"] == "王芳"
    rows = (site.library / SEED / "questions.tsv").read_text(encoding="utf-8").splitlines()
    assert f"{coffee[0]['question']}\t-\tstaff" in rows
    # labelled: no longer to teach
    assert not [g for g in client.get("/staff/api/pending").json["groups"] if g["question"] == coffee[0]["question"]]

    conflict = client.post("/staff/api/labels", json={"question": coffee[0]["question"], "doc": SEED, "anchor": "item-10"})
    assert conflict.status_code == 409 and conflict.json["earlier"]["anchor"] == "-"
    assert "通报未涉及" in conflict.json["message"]
    replaced = client.post("/staff/api/labels", json={"question": coffee[0]["question"], "doc": SEED,
                                                      "anchor": "item-10", "replace": True})
    assert replaced.status_code == 201
    rows = (site.library / SEED / "questions.tsv").read_text(encoding="utf-8").splitlines()
    assert f"{coffee[0]['question']}\titem-10\tstaff" in rows and f"{coffee[0]['question']}\t-\tstaff" not in rows

    undone = client.delete(f"/staff/api/labels/{replaced.json['label']['id']}")
    assert undone.status_code == 200
    assert coffee[0]["question"] not in (site.library / SEED / "questions.tsv").read_text(encoding="utf-8")
    history = client.get("/staff/api/labels").json
    assert [h["undone_at"] is not None for h in history[:2]] == [True, True]
    assert client.delete(f"/staff/api/labels/{replaced.json['label']['id']}").status_code == 404


@pytest.mark.parametrize("body, code", [
    ({"question": "图书馆几点开门", "doc": "no-such-notice", "anchor": "-"}, 404),
    ({"question": "图书馆几点开门", "doc": SEED, "anchor": "item-999"}, 400),
    ({"question": "", "doc": SEED, "anchor": "-"}, 400),
    ({"question": "图书馆\t几点开门", "doc": SEED, "anchor": "-"}, 400),
    ({"question": ["列表"], "doc": SEED, "anchor": "-"}, 400),
])
def test_a_bad_label_is_a_4xx_in_both_languages_and_nothing_is_written(site, body, code):
    client = _signed_in(site)
    before = (site.library / SEED / "questions.tsv").read_text(encoding="utf-8")
    reply = client.post("/staff/api/labels", json=body)
    assert reply.status_code == code and reply.json["message"] and reply.json["detail"]
    assert (site.library / SEED / "questions.tsv").read_text(encoding="utf-8") == before


def test_a_labelled_question_is_masked_like_everything_else(site):
    client = _signed_in(site)
    made = client.post("/staff/api/labels", json={"question": "我的电话13912345678，图书馆几点开门", "doc": SEED, "anchor": "-"})
    assert made.status_code == 201
    assert "13912345678" not in (site.library / SEED / "questions.tsv").read_text(encoding="utf-8")
    assert "13912345678" not in made.json["label"]["question"]


def test_the_csv_export_and_the_chart(site):
    _citizen(site, "citizen-2", "应急广播建设进展如何", "=HYPERLINK(\"http://x\") 明天天气怎么样")
    client = _signed_in(site)
    exported = client.get("/staff/api/turns.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["at", "doc", "question"] and len(rows) == 3
    assert rows[2][2].startswith("'=")  # a spreadsheet shows it, never runs it
    only_declined = list(csv.reader(io.StringIO(client.get("/staff/api/turns.csv?declined=1").get_data(as_text=True))))
    assert len(only_declined) == 2
    chart = client.get("/staff/api/chart.svg")
    assert chart.mimetype == "image/svg+xml"
    svg = chart.get_data(as_text=True)
    assert svg.startswith("<svg") and "共 2 个问题，未回答 1 个" in svg and svg.count('class="bar"') == 30
    assert client.get("/staff/api/turns?since=2026-13-01").status_code == 400


def test_the_notices_show_their_figures(site):
    _citizen(site, "citizen-3", "应急广播建设进展如何", "明天天气怎么样")
    site.extensions["conversation_log"].flush()
    client = _signed_in(site)
    notices = client.get("/staff/api/notices").json
    seed = next(n for n in notices if n["doc"] == SEED)
    assert seed["asked"] == 2 and seed["declined"] == 0.5
    assert seed["top_items"][0]["anchor"] == "item-16" and seed["top_items"][0]["label"].startswith("第16条")


def test_a_notice_uploaded_is_checked_first_then_added(site):
    client = _signed_in(site)
    meta = {"doc": "hexi-wjj-xuncha-2025", "title": "关于市委第三轮巡察整改进展情况的通报",
            "issuer": "中共河西市卫生健康局党组", "date": "2025-09-01", "period_start": "2025-09-01",
            "period_end": "2025-09-30", "area": "河西市，河西", "field": "health"}
    text = (HEXI / "notice.txt").read_text(encoding="utf-8")
    unknown = client.post("/staff/api/notices/preview", json={**meta, "field": "no-such-field", "text": text})
    assert unknown.status_code == 400 and unknown.json["error"] == "unknown_field" and unknown.json["detail"]
    preview = client.post("/staff/api/notices/preview", json={**meta, "text": text})
    assert preview.status_code == 200 and any("第1条" in line for line in preview.json["structure"])
    assert not (site.library / meta["doc"]).exists()  # nothing written by a check
    bad = client.post("/staff/api/notices/preview", json={**meta, "text": "这不是一份通报。"})
    assert bad.status_code == 400 and bad.json["message"].startswith("无法读取")
    added = client.post("/staff/api/notices", json={**meta, "text": text})
    assert added.status_code == 201
    assert (site.library / meta["doc"] / "notice.txt").read_text(encoding="utf-8") == text
    from knowledge.store import load_meta

    assert load_meta(site.library / meta["doc"] / "notice.yml").field == "health"  # its field's vocabulary
    again = client.post("/staff/api/notices", json={**meta, "text": text})
    assert again.status_code == 400 and "已有" in again.json["message"]


def test_a_production_server_without_a_secret_key_says_so_at_start(monkeypatch):
    from server import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        create_app({"WARM_UP": "blocking"})


def test_staff_add_reads_the_password_from_stdin_and_refuses_a_short_one(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'staff.sqlite3'}")
    command = [sys.executable, "-m", "bot", "staff", "add"]
    made = subprocess.run([*command, "李明", "--password-stdin"], input=PASSWORD + "\n", cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and "已创建账号 李明" in made.stdout
    short = subprocess.run([*command, "赵六", "--password-stdin"], input="short\n", cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert short.returncode == 2 and "密码至少" in short.stderr
    from bot.staff import StaffAccounts

    accounts = StaffAccounts(env["DATABASE_URL"])
    assert accounts.check("李明", PASSWORD) and not accounts.check("李明", "wrong-password")
    assert accounts.names() == ["李明"]


def test_the_console_keeps_its_accounts_labels_and_turns_in_postgresql(bot, tmp_path):
    """DATABASE_URL naming a real PostgreSQL (Debian's, started in a temp directory): sign-in and
    its throttle, the turns and their filters, 待处理, a label, its conflict, replacement and undo,
    the CSV and the chart, all on the server's tables."""
    import sqlalchemy as sa

    with postgres_server() as url:
        site = _site(bot, tmp_path, url)
        declined = _citizen(site, "pg-citizen", "图书馆的咖啡好不好喝", "应急广播建设进展如何")
        assert declined[0]["custom"]["abstained"] and not declined[1]["custom"]["abstained"]
        client = _signed_in(site)
        assert client.get("/staff/api/turns").json["total"] == 2
        assert [r["question"] for r in client.get("/staff/api/turns?declined=1").json["rows"]] == ["图书馆的咖啡好不好喝"]
        assert [r["question"] for r in client.get("/staff/api/turns?q=应急").json["rows"]] == ["应急广播建设进展如何"]
        group = next(g for g in client.get("/staff/api/pending").json["groups"] if "咖啡" in g["question"])

        made = client.post("/staff/api/labels", json={"question": group["question"], "doc": SEED, "anchor": "-"})
        assert made.status_code == 201
        conflict = client.post("/staff/api/labels", json={"question": group["question"], "doc": SEED, "anchor": "item-10"})
        assert conflict.status_code == 409 and conflict.json["earlier"]["anchor"] == "-"
        replaced = client.post("/staff/api/labels", json={"question": group["question"], "doc": SEED,
                                                          "anchor": "item-10", "replace": True})
        assert replaced.status_code == 201
        assert client.delete(f"/staff/api/labels/{replaced.json['label']['id']}").status_code == 200
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text('SELECT anchor, "by", undone_by FROM labels ORDER BY id')).all()
            accounts = conn.execute(sa.text("SELECT name FROM staff")).scalars().all()
        engine.dispose()
        assert [tuple(r) for r in rows] == [("-", "王芳", "王芳"), ("item-10", "王芳", "王芳")]
        assert accounts == ["王芳"]
        assert group["question"] not in (site.library / SEED / "questions.tsv").read_text(encoding="utf-8")

        exported = list(csv.reader(io.StringIO(client.get("/staff/api/turns.csv").get_data(as_text=True).lstrip("\ufeff"))))
        assert len(exported) == 3
        assert "共 2 个问题，未回答 1 个" in client.get("/staff/api/chart.svg").get_data(as_text=True)
        outsider = site.test_client()
        for _ in range(5):
            assert outsider.post("/staff/api/login", json={"username": "王芳", "password": "wrong"}).status_code == 401
        assert outsider.post("/staff/api/login", json={"username": "王芳", "password": PASSWORD}).status_code == 429
