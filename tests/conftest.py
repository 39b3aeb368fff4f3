"""Shared fixtures: the real bot (real model, real FAISS index), the Flask app and its client.

Nothing of our own is mocked. The bot is built once per test session; its index lives in a
session temp dir so tests never touch (or depend on) the developer's index/build.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests send hundreds of questions from 127.0.0.1; the rate limit is tested where it is set
# (tests/test_rate_limit.py), and every other app, in-process or a subprocess, runs without it.
os.environ["RATE_LIMITS"] = "off"

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def free_port() -> int:
    """A free TCP port on the loopback interface, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """Debian's redis-server, started in a temp dir on a free loopback port, stopped after."""
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def gunicorn_flags() -> list[str]:
    """make serve's gunicorn flags, read from the Makefile's GUNICORN_FLAGS (one source)."""
    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("GUNICORN_FLAGS"))
    return shlex.split(line.split("=", 1)[1])


@contextlib.contextmanager
def gunicorn(env: dict, log_path: Path, timeout: float = 120):
    """The server exactly as make serve runs it (its GUNICORN_FLAGS) on a free loopback port, with
    ``env``; yields its base URL once /healthz answers 200. Its logs go to ``log_path``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *gunicorn_flags(), "--bind", f"127.0.0.1:{port}",
                                 "server:create_app()"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    assert proc.poll() is None, log_path.read_text(errors="replace")[-2000:]
                    assert time.monotonic() < deadline, "gunicorn did not come up"
                    time.sleep(0.5)
            yield base
        finally:
            # SIGINT is gunicorn's quick shutdown (SIGTERM waits out graceful_timeout, and
            # gunicorn 27's control-socket thread can hold the master that long)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("index-build")


@pytest.fixture(scope="session")
def bot(index_dir):
    """The bot exactly as the server builds it, warmed up (model loaded, index built)."""
    from bot.runtime import build_bot

    bot = build_bot({"INDEX_DIR": str(index_dir)})
    bot.warm_up()
    return bot


@pytest.fixture(scope="session")
def answerer(bot):
    return bot.answerer


@pytest.fixture(scope="session")
def retriever(bot):
    return bot.retriever


@pytest.fixture(scope="session")
def app(bot):
    """The real Flask app around the session's bot."""
    from server import create_app

    app = create_app({"TESTING": True, "BOT": bot})
    return app


@pytest.fixture()
def client(app):
    return app.test_client()
