"""The per-client rate limit on the public POST (Flask-Limiter): a 429 with the JSON error body and
Retry-After; the client taken from X-Forwarded-For only behind TRUSTED_PROXIES; one count across
gunicorn's workers through a real redis-server."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest

from server import create_app
from bench._serve import gunicorn
from tests.conftest import free_port

pytestmark = pytest.mark.slow
PHONE = "0763-3375826"


def _client(bot, **config):
    return create_app({"TESTING": True, "BOT": bot, **config}).test_client()


def _ask(client, sender: str, addr: str = "192.0.2.10", **headers):
    return client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "你好"},
                       environ_base={"REMOTE_ADDR": addr}, headers=headers)


def test_a_client_over_its_limit_gets_429_with_the_reason_and_when_to_retry(bot):
    client = _client(bot, RATE_LIMITS="3 per minute")
    assert [_ask(client, "rl-a").status_code for _ in range(3)] == [200, 200, 200]
    response = _ask(client, "rl-a")
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "rate_limited" and "请稍后再试" in body["message"] and PHONE in body["message"]
    assert body["detail"].startswith("Too many requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # another client is not held back by the first
    assert _ask(client, "rl-b", addr="192.0.2.11").status_code == 200


def test_preflights_do_not_count(bot):
    client = _client(bot, RATE_LIMITS="2 per minute", ALLOWED_ORIGINS="https://www.example.gov.cn")
    for _ in range(5):
        preflight = client.options("/webhooks/rest/webhook", environ_base={"REMOTE_ADDR": "192.0.2.20"},
                                   headers={"Origin": "https://www.example.gov.cn",
                                            "Access-Control-Request-Method": "POST"})
        assert preflight.status_code in (200, 204)
    assert _ask(client, "rl-p", addr="192.0.2.20").status_code == 200


def test_x_forwarded_for_counts_only_behind_trusted_proxies(bot):
    # Without a trusted proxy anyone can send the header: a new value each time does not help.
    direct = _client(bot, RATE_LIMITS="2 per minute")
    codes = [_ask(direct, "rl-x", **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    # Behind one trusted proxy (nginx on the same host), the header names the client.
    proxied = _client(bot, RATE_LIMITS="2 per minute", TRUSTED_PROXIES=1)
    assert [_ask(proxied, "rl-y", addr="127.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(4)] == [200, 200, 200, 200]
    same = [_ask(proxied, "rl-z", addr="127.0.0.1", **{"X-Forwarded-For": "198.51.100.99"}).status_code
            for _ in range(3)]
    assert same == [200, 200, 429]


def test_limits_off_and_bad_limits(bot):
    client = _client(bot, RATE_LIMITS="off")
    assert all(_ask(client, "rl-off").status_code == 200 for _ in range(30))
    for bad in ("twenty a minute", "20 per fortnight"):
        with pytest.raises(ValueError, match="RATE_LIMITS"):
            create_app({"TESTING": True, "BOT": bot, "RATE_LIMITS": bad})
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({"TESTING": True, "BOT": bot, "TRUSTED_PROXIES": -1})


def _post(base: str, sender: str) -> int:
    body = json.dumps({"sender": sender, "message": "你好"}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        assert exc.headers.get("Retry-After"), "a 429 without Retry-After"
        return exc.code


def test_the_limit_holds_across_two_gunicorn_workers_with_redis(bot, index_dir, redis_url, tmp_path):
    env = dict(os.environ, INDEX_DIR=str(index_dir), REDIS_URL=redis_url, RATE_LIMITS="6 per minute")
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        # each request on a new connection: gunicorn's two workers share them; in each worker's
        # own memory the client would get 6 per worker, 12 in all
        codes = [_post(base, f"rl-g{n}") for n in range(14)]
    assert codes.count(200) == 6 and codes.count(429) == 8, codes


def test_a_rate_limit_store_that_is_down_lets_questions_through(bot):
    client = _client(bot, RATE_LIMITS="1 per minute", RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
    assert [_ask(client, "rl-down").status_code for _ in range(3)] == [200, 200, 200]
