"""Slow clients cannot starve citizens: 16 connections trickling their headers one byte a second,
against make serve's gunicorn and against the nginx site config of docs/ in front of it, while a
normal client's questions are answered within a second each."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench._serve import gunicorn, wait_until_healthy
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TRICKLERS = 16
QUESTIONS = ["应急广播建设进展如何", "旅游厕所建了多少座", "第十六条", "工会经费怎么使用", "景区安全谁来管"]


def _ask(base: str, question: str, headers: dict | None = None) -> tuple[int, dict | list | None]:
    body = json.dumps({"sender": f"slow-{question}", "message": question}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


class Tricklers:
    """``n`` connections that each send a request line, then one header byte a second."""

    def __init__(self, port: int, n: int = TRICKLERS) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for s in self.socks:
            s.sendall(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\n")
        header = b"X-Slow: " + b"a" * 200
        for i in range(len(header)):
            if self.stop.wait(1.0):
                return
            for s in self.socks:
                try:
                    s.sendall(header[i:i + 1])
                except OSError:
                    pass  # the server gave up on it: that is allowed

    def __enter__(self):
        self.thread.start()
        time.sleep(2.0)  # every connection has reached the server and is trickling
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def _latencies(base: str) -> list[float]:
    out = []
    for question in QUESTIONS:
        started = time.monotonic()
        status, body = _ask(base, question)
        out.append(time.monotonic() - started)
        assert status == 200 and body and body[0]["text"], (question, status)
    return out


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def test_gunicorn_as_make_serve_runs_it_answers_while_16_clients_trickle(bot, index_dir, tmp_path):
    env = dict(os.environ, INDEX_DIR=str(index_dir))
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        _latencies(base)  # warm
        with Tricklers(_port(base)):
            latencies = _latencies(base)
        assert max(latencies) < 1.0, latencies
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            assert r.status == 200  # no worker was killed


@pytest.fixture()
def nginx_in_front(bot, index_dir, tmp_path):
    """docs/nginx.conf, as shipped but for its ports and paths, in front of make serve's gunicorn
    (run with TRUSTED_PROXIES=1 and a small rate limit, as docs/deployment.md says)."""
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is missing: run `make services`")
    env = dict(os.environ, INDEX_DIR=str(index_dir), TRUSTED_PROXIES="1", RATE_LIMITS="8 per minute")
    with gunicorn(env, tmp_path / "gunicorn.log") as upstream:
        port = free_port()
        site = (REPO / "docs" / "nginx.conf").read_text(encoding="utf-8")
        site = site.replace("server 127.0.0.1:5000;", f"server 127.0.0.1:{_port(upstream)};")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        assert f"127.0.0.1:{port}" in site and f"127.0.0.1:{_port(upstream)}" in site
        prefix = tmp_path / "nginx"
        for sub in ("logs", "tmp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / "tmp", 0o777)
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n access_log {prefix}/logs/access.log;\n client_body_temp_path {prefix}/tmp/body;\n"
            f" proxy_temp_path {prefix}/tmp/proxy;\n fastcgi_temp_path {prefix}/tmp/fastcgi;\n"
            f" uwsgi_temp_path {prefix}/tmp/uwsgi;\n scgi_temp_path {prefix}/tmp/scgi;\n{site}\n}}\n",
            encoding="utf-8")
        check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, 20, "nginx", prefix / "logs" / "error.log")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_behind_nginx_slow_clients_wait_in_nginx_and_a_forged_client_address_does_not_help(nginx_in_front):
    base = nginx_in_front
    status, body = _ask(base, "应急广播建设进展如何")
    assert status == 200 and body[0]["custom"]["citations"][0]["anchor"] == "item-16"
    with Tricklers(_port(base)):
        latencies = _latencies(base)
    assert max(latencies) < 1.0, latencies
    # 1 + 5 questions so far; nginx replaces X-Forwarded-For, so a new forged address each time
    # is still the same client: two more pass, then 429.
    codes = [_ask(base, "你好", {"X-Forwarded-For": f"203.0.113.{n}"})[0] for n in range(4)]
    assert codes == [200, 200, 429, 429], codes
