"""What the public internet sends: every request gets an answer or a 4xx, never a 500."""

from __future__ import annotations

import json
import random
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from bench._hostile import hostile_request
from tests.conftest import free_port

WEBHOOK = "/webhooks/rest/webhook"


def _post(client, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body, ensure_ascii=True)
    return client.post(WEBHOOK, data=data, content_type=content_type)


@pytest.mark.parametrize("body, code", [
    ({"sender": "a", "message": "\ud800"}, "invalid_characters"),
    ({"sender": "\ud800", "message": "你好"}, "invalid_characters"),
    ({"sender": "a", "message": "你好\x00"}, "invalid_characters"),
    ({"sender": "a", "message": "你好", "metadata": {"page": "\udfff"}}, "invalid_metadata"),
    ({"sender": "a", "message": "你好", "metadata": {"junk": "x" * 15000}}, "invalid_metadata"),
    ({"sender": "a", "message": "你好", "metadata": {"a": {"b": {"c": {"d": 1}}}}}, "invalid_metadata"),
])
def test_unencodable_text_and_oversized_metadata_are_400(client, bot, body, code):
    before = bot.dialogue.sender_count
    response = _post(client, body)
    assert response.status_code == 400
    data = response.get_json()
    assert data["error"] == code and data["message"] and data["detail"]
    assert bot.dialogue.sender_count == before  # no session is created for a refused request


def test_a_line_break_and_a_tab_are_fine(client):
    assert _post(client, {"sender": "a", "message": "应急广播\n建设进展\t如何"}).status_code == 200


@pytest.mark.slow
def test_two_thousand_hostile_requests_get_no_5xx(client):
    rng = random.Random(20261201)
    started = time.monotonic()
    statuses = {}
    for _ in range(2000):
        body, content_type, method = hostile_request(rng)
        response = client.open(WEBHOOK, method=method, data=body, content_type=content_type)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (body[:200], content_type, method, response.get_data()[:300])
        if response.status_code >= 400:
            assert response.is_json and response.get_json()["message"]
    assert time.monotonic() - started < 300
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 500, statuses


@pytest.fixture()
def live_server(app):
    """The app behind Werkzeug's own server (what python server.py runs), on a free loopback port."""
    port = free_port()
    from server import QuietRequestHandler

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_malformed_chunked_body_is_400_and_the_server_names_no_versions(live_server):
    reply = _raw(live_server, b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 400"), head
    assert "Werkzeug" not in head and "Python" not in head
    assert "Server: zhenggai-qa" in head
