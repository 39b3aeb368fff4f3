"""make serve's gunicorn, started on a free loopback port for the benchmarks and the tests: the
Makefile's GUNICORN_FLAGS, one source for all of them."""

from __future__ import annotations

import contextlib
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def gunicorn_flags() -> list[str]:
    """make serve's gunicorn flags, read from the Makefile's GUNICORN_FLAGS."""
    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("GUNICORN_FLAGS"))
    return shlex.split(line.split("=", 1)[1])


def wait_until_healthy(base: str, proc: subprocess.Popen, timeout: float, what: str,
                       log_path: Path | None = None, listening: bool = False) -> None:
    """Return once ``base``/healthz answers 200 (with ``listening``: answers at all, a 503 while
    the index is built too); raise RuntimeError (with the tail of ``log_path``) when ``proc``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError:  # 503 while the bot loads
            if listening:
                return
        except OSError:  # not listening yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"{what} did not come up\n{tail}")
        time.sleep(0.2)


@contextlib.contextmanager
def gunicorn(env: dict, log_path: Path | None = None, timeout: float = 300, listening: bool = False):
    """The server exactly as make serve runs it, with ``env``; yields its base URL once /healthz
    answers 200 (with ``listening``: once it answers at all). Its output goes to ``log_path``
    (discarded when None)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    if "DATABASE_URL" not in env and "CONVERSATION_LOG" not in env:
        # the conversation log of a test or bench server is its own, never the checkout's var/
        folder = Path(tempfile.mkdtemp(prefix="gunicorn-log-"))
        env = dict(env, DATABASE_URL=f"sqlite:///{folder / 'conversations-log.sqlite3'}")
    if "SECRET_KEY" not in env and "SECRET_KEY_FILE" not in env:
        env = dict(env, SECRET_KEY=secrets.token_urlsafe(32))  # a production server needs one
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log_path, "wb")) if log_path else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *gunicorn_flags(), "--bind", f"127.0.0.1:{port}",
                                 "server:create_app()"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_healthy(base, proc, timeout, "gunicorn", log_path, listening=listening)
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
