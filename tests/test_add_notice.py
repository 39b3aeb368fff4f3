"""Staff add a notice in one command, and the running server answers from it without a restart
(issue 13): `python -m bot add-notice` writes the notice's folder, prints the structure it read and
updates the index; make serve's gunicorn workers pick the new index up by themselves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench._serve import gunicorn
from knowledge.store import NOTICES_DIR

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NEW = REPO / "tests" / "data" / "library" / "nanshan-jtj-xuncha-2024" / "notice.txt"
ARGS = ["--doc", "nanshan-jtj-xuncha-2024", "--title", "关于县委第二轮巡察整改情况的通报",
        "--issuer", "中共南山县交通运输局党组", "--date", "2024-11-05", "--period-end", "2024-12-04",
        "--area", "南山县", "--area", "南山"]


def _ask(base: str, sender: str, message: str) -> dict:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())[0]


def _add(env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "add-notice", str(NEW), *ARGS, *extra], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_notice_added_by_staff_is_answered_by_the_running_server(bot, index_dir, tmp_path):
    library = tmp_path / "notices"
    shutil.copytree(NOTICES_DIR, library)
    own = tmp_path / "index"
    shutil.copytree(index_dir, own)
    env = dict(os.environ, INDEX_DIR=str(own), LIBRARY_DIR=str(library))
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        before = _ask(base, "before", "南山县的危桥改造得怎么样了")
        assert "危桥" not in before["text"]  # no notice loaded speaks of it yet
        added = _add(env)
        assert added.returncode == 0, added.stderr[-2000:]
        assert "第1条" in added.stdout and "0898-6660017" in added.stdout and "索引已更新" in added.stdout
        # the weights deciding when to decline were learnt without it: staff are told how to relearn
        assert "新加了 nanshan-jtj-xuncha-2024" in added.stdout and "python -m bot train-scope" in added.stdout
        assert (library / "nanshan-jtj-xuncha-2024" / "notice.txt").read_text(encoding="utf-8") == NEW.read_text(
            encoding="utf-8")
        deadline, answered = time.monotonic() + 60, 0
        while answered < 6:  # new connections: both workers
            reply = _ask(base, f"after-{answered}-{time.monotonic()}", "南山县的危桥改造得怎么样了")
            cited = [c["doc"] for c in reply["custom"]["citations"]]
            answered = answered + 1 if cited[:1] == ["nanshan-jtj-xuncha-2024"] else 0
            assert time.monotonic() < deadline, f"not picked up: {reply['text'][:80]}"
            time.sleep(0.5)
        assert "《关于县委第二轮巡察整改情况的通报》" in reply["text"]
    again = _add(env)  # the same doc twice: refused, nothing overwritten
    assert again.returncode != 0 and "已有" in again.stderr


def test_a_file_that_is_no_notice_is_refused_and_nothing_is_written(tmp_path):
    library = tmp_path / "notices"
    library.mkdir()
    junk = tmp_path / "junk.txt"
    junk.write_text("这不是一份通报，只有一句话。", encoding="utf-8")
    env = dict(os.environ, LIBRARY_DIR=str(library), INDEX_DIR=str(tmp_path / "index"))
    result = subprocess.run([sys.executable, "-m", "bot", "add-notice", str(junk), *ARGS], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "无法按结构解析" in result.stderr
    assert list(library.iterdir()) == []
