"""server.py on the real app and the real bot: every status path of the API, the pages, the
settings, the headers (CSP, CORS) and ``python server.py`` itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

from server import create_app

REPO = Path(__file__).resolve().parent.parent
WEBHOOK = "/webhooks/rest/webhook"
DOC = "qingyuan-wlj-xuncha-2025"
XSS = "<img src=x onerror=alert(1)>"


def post(client, body, **kw):
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body, ensure_ascii=False)
    return client.post(WEBHOOK, data=body, content_type=kw.pop("content_type", "application/json"), **kw)


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert re.search(r"[\u4e00-\u9fff]", body["message"]), body  # Chinese for people
    assert body["detail"] and body["detail"].isascii(), body  # English for developers
    assert "Traceback" not in response.get_data(as_text=True)
    return body


@pytest.fixture()
def app_with(bot):
    """An app around the session's bot with some settings changed."""

    def make(**config):
        return create_app({"TESTING": True, "BOT": bot, **config})

    return make


# ---- POST /webhooks/rest/webhook: 200 ------------------------------------------------------------


def test_the_bot_keeps_blas_to_one_thread_per_process(bot):
    """gunicorn runs a worker per core; BLAS threads of their own would fight over the same cores
    (two workers were three times slower before the limit). Checked for the BLAS that answering
    uses — numpy's and FAISS's; scipy's, loaded later only to learn the scope weights, is not."""
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info()
            if pool["user_api"] == "blas" and ("numpy" in pool["filepath"] or "faiss" in pool["filepath"])]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


def test_webhook_answers_in_rasa_rest_format_with_citation_urls(client):
    response = post(client, {"sender": "t-200", "message": "应急广播建设进展如何"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    messages = response.get_json()
    assert isinstance(messages, list) and len(messages) == 1
    message = messages[0]
    assert message["recipient_id"] == "t-200"
    assert "第16条" in message["text"]
    custom = message["custom"]
    assert custom["abstained"] is False
    assert 2 <= len(custom["suggestions"]) <= 3
    first = custom["citations"][0]
    assert {"doc", "number", "heading", "path", "anchor", "passage", "quote", "score", "url"} <= set(first)
    assert (first["doc"], first["number"], first["anchor"]) == (DOC, "16", "item-16")
    assert first["quote"] in message["text"]
    assert first["url"].startswith(f"/notice/{DOC}")
    assert first["url"].endswith("#item-16")
    if first.get("spans"):
        assert "?hl=" in first["url"]


def test_webhook_accepts_metadata_and_exactly_500_characters(client):
    question = "应急广播建设进展如何" + "。" * 490
    assert len(question) == 500
    response = post(client, {"sender": "t-500", "message": question, "metadata": {"page": "x"}})
    assert response.status_code == 200
    assert response.get_json()[0]["recipient_id"] == "t-500"


def test_webhook_abstains_with_contact_and_suggestions(client):
    response = post(client, {"sender": "t-oos", "message": "明天清远天气怎么样？"})
    assert response.status_code == 200
    custom = response.get_json()[0]["custom"]
    assert custom["abstained"] is True
    assert custom["citations"] == []
    assert custom["suggestions"]


def test_webhook_xss_question_is_answered_as_data(client):
    response = post(client, {"sender": "t-xss", "message": XSS})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json(), list)


def test_webhook_restart_forgets_the_conversation(client, bot):
    post(client, {"sender": "t-restart", "message": "应急广播建设进展如何"})
    assert bot.dialogue.store._get("t-restart") is not None
    response = post(client, {"sender": "t-restart", "message": "/restart"})
    assert response.status_code == 200
    assert response.get_json() == []
    assert bot.dialogue.store._get("t-restart") is None


def test_rest_channel_status_route(client):
    assert client.get("/webhooks/rest/").get_json() == {"status": "ok"}


# ---- 400s ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type, code",
    [
        ("not json at all", "application/json", "invalid_json"),
        ("{\"sender\": \"a\", \"message\": ", "application/json", "invalid_json"),
        ("", "application/json", "invalid_json"),
        ("sender=a&message=hi", "application/x-www-form-urlencoded", "invalid_json"),
        ("[1, 2]", "application/json", "invalid_json"),
        ("\"a string\"", "application/json", "invalid_json"),
        ({"message": "你好"}, "application/json", "missing_field"),
        ({"sender": "a"}, "application/json", "missing_field"),
        ({}, "application/json", "missing_field"),
        ({"sender": 7, "message": "你好"}, "application/json", "wrong_type"),
        ({"sender": "a", "message": 42}, "application/json", "wrong_type"),
        ({"sender": "a", "message": None}, "application/json", "wrong_type"),
        ({"sender": "a", "message": ["你好"]}, "application/json", "wrong_type"),
        ({"sender": "a", "message": "你好", "metadata": "x"}, "application/json", "wrong_type"),
        ({"sender": "a", "message": "你好", "metadata": [1]}, "application/json", "wrong_type"),
        ({"sender": "", "message": "你好"}, "application/json", "empty_sender"),
        ({"sender": "a" * 129, "message": "你好"}, "application/json", "sender_too_long"),
        ({"sender": "a", "message": ""}, "application/json", "empty_message"),
        ({"sender": "a", "message": "  \n\t "}, "application/json", "empty_message"),
        ({"sender": "a", "message": "问" * 501}, "application/json", "message_too_long"),
    ],
)
def test_webhook_rejects_bad_requests_with_400(client, body, content_type, code):
    assert_error(post(client, body, content_type=content_type), 400, code)


def test_deeply_nested_json_is_400_not_500(client):
    assert_error(post(client, "[" * 5000 + "]" * 5000), 400, "invalid_json")
    assert_error(post(client, '{"sender": "a", "message": "hi", "metadata": ' + "[" * 5000 + "]" * 5000 + "}"), 400,
                 "invalid_json")


def test_too_long_message_says_the_limit_and_the_length(client):
    body = assert_error(post(client, {"sender": "a", "message": "问" * 501}), 400, "message_too_long")
    assert "500" in body["message"] and "501" in body["message"]


def test_the_message_limit_is_a_setting(app_with):
    client = app_with(MAX_MESSAGE_CHARS=10).test_client()
    assert_error(post(client, {"sender": "a", "message": "问" * 11}), 400, "message_too_long")


def test_huge_body_is_413_json(client):
    body = json.dumps({"sender": "a", "message": "x" * 20000})
    assert_error(post(client, body), 413, "too_large")


# ---- 404, 405, 503 --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/rest/nope", "/webhooks/telegram/webhook", "/api/anything", "/healthz/extra"])
def test_unknown_api_paths_are_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_on_webhook_is_json_405(client, method):
    response = getattr(client, method)(WEBHOOK)
    body = assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert body["detail"].startswith("405")


def test_wrong_method_on_healthz_is_json_405(client):
    assert_error(client.post("/healthz"), 405, "method_not_allowed")


def test_unknown_page_is_a_chinese_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "页面不存在" in response.get_data(as_text=True)
    assert client.get("/notice/no-such-notice").status_code == 404


def test_healthz_ready(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["notices"] == 1 and body["chunks"] > 0
    assert body["conversations"]["failures"] == 0 and body["conversations"]["store"]
    # the weights deciding when to decline were learnt on the very notices loaded
    assert body["scope"]["current"] is True and body["scope"]["added"] == []


def test_healthz_and_webhook_say_503_while_the_bot_loads(app_with, monkeypatch):
    app = app_with()
    live = app.extensions["live_bot"]
    monkeypatch.setattr(live, "_bot", None)  # as if the model were still loading
    monkeypatch.setattr(live, "loaded", threading.Event())
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] == "starting"
    response = post(client, {"sender": "a", "message": "应急广播建设进展如何"})
    assert_error(response, 503, "starting")
    assert response.headers["Retry-After"] == "5"
    # The pages and the widget do not wait for the model.
    assert client.get("/").status_code == 200
    assert client.get("/widget.js").status_code == 200
    assert client.get("/notice").status_code == 200


def test_internal_errors_are_json_500_without_traceback(app_with, monkeypatch):
    app = app_with()
    live = app.extensions["live_bot"]

    def boom(*a, **kw):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(live.bot.dialogue, "handle", boom)
    response = post(app.test_client(), {"sender": "a", "message": "你好"})
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in json.dumps(body)


# ---- CORS ------------------------------------------------------------------------------------------


def test_cors_only_for_listed_origins(app_with):
    client = app_with(ALLOWED_ORIGINS="https://www.example.gov.cn, https://intranet.example:8443").test_client()
    ok = post(client, {"sender": "c", "message": "你好"}, headers={"Origin": "https://www.example.gov.cn"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.example.gov.cn"
    assert "Origin" in ok.headers["Vary"]
    other = post(client, {"sender": "c", "message": "你好"}, headers={"Origin": "https://evil.example"})
    assert_error(other, 403, "origin_not_allowed")  # refused before any work, not answered unread
    assert "Access-Control-Allow-Origin" not in other.headers
    pre = client.options(WEBHOOK, headers={"Origin": "https://intranet.example:8443",
                                           "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://intranet.example:8443"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
    bad = client.options(WEBHOOK, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert_error(bad, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in bad.headers


def test_no_cors_by_default(client, bot):
    before = bot.dialogue.sender_count
    response = post(client, {"sender": "cross", "message": "你好"}, headers={"Origin": "https://www.example.gov.cn"})
    assert_error(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert bot.dialogue.sender_count == before
    # the service's own pages (the demo page, the notice page) post from its own origin
    own = post(client, {"sender": "own", "message": "你好"}, headers={"Origin": "http://localhost"})
    assert own.status_code == 200


# ---- pages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/notice", f"/notice/{DOC}", "/no-such-page"])
def test_pages_carry_a_content_security_policy(client, path):
    csp = client.get(path).headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_pages_load_nothing_from_outside(client):
    for path in ("/", "/notice", "/static/site.css"):
        text = client.get(path).get_data(as_text=True)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(" not in text, path
    code = client.get("/widget.js").get_data(as_text=True).split("*/", 1)[1]  # after the usage comment
    code = code.replace('"http://www.w3.org/2000/svg"', "")  # a namespace name, not a resource
    assert not re.search(r"https?://|@import|url\(", code)


def test_demo_page_carries_the_widget_like_a_news_page(client):
    html = client.get("/").get_data(as_text=True)
    assert '<script src="/widget.js" data-doc="qingyuan-wlj-xuncha-2025" defer></script>' in html
    assert "关于八届市委第五轮巡察整改进展情况的通报" in html
    assert "清远市文化广电旅游体育局" in html
    assert f'href="/notice/{DOC}#topic-4"' in html


def test_notice_page_has_an_anchor_per_node(client, bot):
    html = client.get("/notice").get_data(as_text=True)
    notice = bot.answerer.library.notices[DOC]
    for node in notice.walk():
        assert f'id="{node.anchor}"' in html, node.anchor
    assert html.count('id="item-16"') == 1
    assert "<mark>" not in html
    assert "0763-3375826" in html


def test_notice_page_marks_the_quoted_spans(client, bot):
    notice = bot.answerer.library.notices[DOC]
    item = notice.find("item-16")
    first = item.children[0]
    second = item.children[2]
    html = client.get(f"/notice/{DOC}?hl={first.start}-{first.start + 20},{second.start}-{second.end}").get_data(as_text=True)
    marks = re.findall(r"<mark>(.*?)</mark>", html)
    assert marks == [notice.text[first.start:first.start + 20], notice.text[second.start:second.end]]
    assert "黄色底色" in html


def test_notice_highlights_follow_the_webhook_url(client):
    citation = post(client, {"sender": "t-hl", "message": "应急广播建设进展如何"}).get_json()[0]["custom"]["citations"][0]
    html = client.get(citation["url"].split("#")[0]).get_data(as_text=True)
    section = html[html.index('id="item-16"'):html.index('id="topic-5"')]
    if citation.get("spans"):
        marked = "".join(re.findall(r"<mark>(.*?)</mark>", section))
        for piece in citation["quote"].split("……"):
            assert piece.strip() in marked


def test_highlights_across_nodes_are_split_and_well_nested(client, bot):
    notice = bot.answerer.library.notices[DOC]
    start, end = notice.find("item-15").children[-1].start, notice.find("item-16").children[0].end
    html = client.get(f"/notice?hl={start}-{end}").get_data(as_text=True)
    assert html.count("<mark>") >= 2
    # Every <mark> closes inside the tag it opened in.
    for chunk in re.findall(r"<mark>(.*?)</mark>", html):
        assert "<" not in chunk


@pytest.mark.parametrize("hl", ["abc", "5-2", "-1-5", "1-99999999", "9999999-9999999", "1-2," * 50, "1-2;3-4", "%3Cscript%3E"])
def test_bad_highlight_parameters_are_ignored(client, hl):
    response = client.get(f"/notice?hl={hl}")
    assert response.status_code == 200
    assert "<script>" not in response.get_data(as_text=True).split("</main>")[0]


def test_notice_text_is_escaped(app_with, bot, monkeypatch):
    app = app_with()
    notice = app.extensions["library"].notices[DOC]
    node = notice.find("item-16-p2")
    evil = notice.text[: node.start] + XSS + notice.text[node.start + len(XSS):]
    monkeypatch.setattr(notice, "text", evil)
    html = app.test_client().get("/notice").get_data(as_text=True)
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# ---- the widget ------------------------------------------------------------------------------------


def test_widget_js_carries_its_settings(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    text = response.get_data(as_text=True)
    assert "__WIDGET_CONFIG__" not in text
    config = json.loads(re.search(r"var CONFIG = (\{.*?\});\n", text).group(1))
    assert 4 <= len(config["suggestions"]) <= 6
    assert config["phone"] == "0763-3375826"  # from notice.contact
    assert config["maxChars"] == 500
    assert config["webhook"] == WEBHOOK
    assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text


def test_widget_config_is_script_safe(app_with, monkeypatch):
    app = app_with()
    # A staff-edited suggestion with markup must not break out of the inlined config.
    monkeypatch.setattr(app.extensions["live_bot"].bot.answerer, "welcome_suggestions",
                        lambda doc=None: ["</script><script>alert(1)</script>"])
    text = app.test_client().get("/widget.js").get_data(as_text=True)
    assert "</script>" not in text.split("var CONFIG = ")[1].split("\n")[0]


# ---- settings --------------------------------------------------------------------------------------


def test_settings_come_from_defaults_then_environment_then_test_config(bot, monkeypatch):
    monkeypatch.setenv("PORT", "5077")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example,https://b.example/")
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "300")
    app = create_app({"TESTING": True, "BOT": bot, "MAX_MESSAGE_CHARS": 200})
    assert app.config["HOST"] == "127.0.0.1"
    assert app.config["PORT"] == 5077
    assert app.config["ALLOWED_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert app.config["MAX_MESSAGE_CHARS"] == 200


@pytest.mark.parametrize("config", [{"PORT": "http"}, {"ALLOWED_ORIGINS": "www.example.gov.cn"}, {"WARM_UP": "later"}])
def test_bad_settings_fail_at_start_with_the_setting_named(bot, config):
    key = next(iter(config))
    with pytest.raises(ValueError, match=key):
        create_app({"TESTING": True, "BOT": bot, **config})


def test_without_its_model_a_production_start_fails_loudly(tmp_path):
    from index.embedding import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="make model"):
        create_app({"EMBEDDING_MODEL": str(tmp_path / "missing"), "INDEX_DIR": str(tmp_path / "ix"), "WARM_UP": "blocking",
                    "SECRET_KEY": "a-key-for-this-test-only-0123456789"})


def test_without_its_model_a_background_start_serves_pages_and_says_why(tmp_path):
    app = create_app({"EMBEDDING_MODEL": str(tmp_path / "missing"), "INDEX_DIR": str(tmp_path / "ix"),
                      "WARM_UP": "background"})
    client = app.test_client()
    assert client.get("/").status_code == 200
    deadline = time.monotonic() + 30
    while app.extensions["live_bot"].error is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    body = assert_error(client.get("/healthz"), 503, "unavailable")
    assert "make model" in body["detail"]
    assert_error(post(client, {"sender": "a", "message": "你好"}), 503, "unavailable")


def test_public_url_makes_citation_links_absolute(app_with):
    client = app_with(PUBLIC_URL="https://zixun.example.gov.cn/").test_client()
    citation = post(client, {"sender": "p", "message": "第16条"}).get_json()[0]["custom"]["citations"][0]
    assert citation["url"].startswith(f"https://zixun.example.gov.cn/notice/{DOC}")


# ---- python server.py ------------------------------------------------------------------------------



def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.slow
def test_python_server_py_serves_pages_at_once_and_answers_when_ready(index_dir, bot):
    port = free_port()
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), INDEX_DIR=str(index_dir), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = _get(base + "/widget.js")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server.py did not serve within 20 s"
                time.sleep(0.2)
        assert status == 200 and b"CONFIG" in body
        deadline = time.monotonic() + 120
        while (status := _get(base + "/healthz")[0]) != 200:
            assert status == 503 and proc.poll() is None
            assert time.monotonic() < deadline, "the bot did not load within 120 s"
            time.sleep(0.5)
        request = urllib.request.Request(
            base + WEBHOOK, data=json.dumps({"sender": "s", "message": "应急广播建设进展如何"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert json.loads(r.read())[0]["custom"]["citations"][0]["anchor"] == "item-16"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_every_welcome_suggestion_gets_an_answer(client):
    text = client.get("/widget.js").get_data(as_text=True)
    config = json.loads(re.search(r"var CONFIG = (\{.*?\});\n", text).group(1))
    for i, question in enumerate(config["suggestions"]):
        reply = post(client, {"sender": f"t-sugg-{i}", "message": question}).get_json()[0]
        assert reply["custom"]["abstained"] is False, question
        assert reply["text"], question


def test_rasa_backend_down_is_503_in_chinese(bot):
    from dataclasses import replace

    from bot.remote import RemoteRasaDialogue

    relay = replace(bot, dialogue=RemoteRasaDialogue(f"http://127.0.0.1:{free_port()}", timeout=2))
    client = create_app({"TESTING": True, "BOT": relay}).test_client()
    response = post(client, {"sender": "r", "message": "应急广播建设进展如何"})
    assert_error(response, 503, "upstream_unavailable")


def test_healthz_shows_the_public_only_the_status(app_with):
    app = app_with(HEALTH_TOKEN="s3cret")
    public = app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert public.status_code == 200 and public.get_json() == {"status": "ok"}
    proxied = app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.5"})
    assert proxied.get_json() == {"status": "ok"}  # relayed by a proxy: not this machine asking
    operator = app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.5"},
                                     headers={"X-Health-Token": "s3cret"})
    assert operator.get_json()["chunks"] > 0
    wrong = app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.5"},
                                  headers={"X-Health-Token": "guess"})
    assert wrong.get_json() == {"status": "ok"}
