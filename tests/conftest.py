"""Shared fixtures: the real bot (real model, real FAISS index), the Flask app and its client.

Nothing of our own is mocked. The bot is built once per test session; its index lives in a
session temp dir so tests never touch (or depend on) the developer's index/build.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
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


@contextlib.contextmanager
def redis_server(folder: Path):
    """Debian's redis-server, started in ``folder`` on a free loopback port; yields its URL and
    stops it on exit."""
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def postgres_server():
    """Debian's PostgreSQL: a cluster initialised in a new temp directory (as the ``postgres``
    user when the tests run as root, since the server refuses root), started on a free loopback
    port; yields its SQLAlchemy URL and stops and removes it on exit."""
    import glob
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is not installed: make services installs the Debian package"
    bindir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(folder, 0o755)
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8", "--locale=C"], check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(folder / "log"),
                        "-o", f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=120)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server for the whole session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


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
