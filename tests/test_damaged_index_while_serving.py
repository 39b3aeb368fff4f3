"""An index damaged on disk while make serve runs leaves the port answering: the workers answer
from the index the master loaded before forking (--preload), also a worker started afresh after
one is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.request

import pytest

from bench._serve import gunicorn

pytestmark = pytest.mark.slow


def _ask(base: str, sender: str, message: str) -> list:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


def _worker_pids(log_path) -> list[int]:
    return [int(line.rsplit("pid: ", 1)[1].strip(")\n ")) for line in log_path.read_text().splitlines()
            if "Booting worker with pid:" in line]


def test_a_damaged_index_and_a_killed_worker_leave_the_service_answering(bot, index_dir, tmp_path):
    own = tmp_path / "index"
    shutil.copytree(index_dir, own)
    log = tmp_path / "gunicorn.log"
    with gunicorn(dict(os.environ, INDEX_DIR=str(own)), log) as base:
        assert _ask(base, "d-0", "第十六条")[0]["custom"]["citations"][0]["anchor"] == "item-16"
        for path in (own / "current").glob("*.faiss"):
            path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk or a bad copy
        os.kill(_worker_pids(log)[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(_worker_pids(log)) < 3:  # the master has forked a replacement
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        for n in range(8):  # new connections, so both workers (one of them new) answer
            reply = _ask(base, f"d-{n + 1}", "应急广播建设进展如何")
            assert reply[0]["custom"]["citations"][0]["anchor"] == "item-16"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            assert r.status == 200
    # Stopped, every worker has left, none aborting or hanging in the interpreter's shutdown
    # (bot/wsgi_hooks.py).
    text = log.read_text(errors="replace")
    assert "Shutting down: Master" in text and "terminate called" not in text and "SIGABRT" not in text
    for pid in _worker_pids(log):
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower(), pid
