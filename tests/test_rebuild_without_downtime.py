"""A rebuild never takes make serve down (issue 12, point 5). Under make serve's gunicorn:

- notices changed since the index was built: the port answers at once from the last good index,
  with the notices as they were, while a new index is built in the background; then both
  workers switch to it, and no request in between failed;
- an index damaged with none good beside it: 503 with a Chinese message and Retry-After while it
  is rebuilt, never a closed port, then answers;
- an index folder that is read-only or full: a clear error for operations, and the last good
  index answering.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench._serve import gunicorn
from knowledge.store import NOTICES_DIR

pytestmark = pytest.mark.slow

OLD_PHONE, NEW_PHONE = "0763-3375826", "0763-3375999"


def _post(base: str, sender: str, message: str) -> tuple[int, dict | list, dict]:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:  # loopback: details
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _text(reply: list) -> str:
    return "\n".join(m.get("text", "") for m in reply)


class _Prober(threading.Thread):
    """Asks a question every 0.1 s on a new connection and keeps every outcome."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.statuses, self.refused, self._halt = base, [], [], threading.Event()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            n += 1
            try:
                self.statuses.append(_post(self.base, f"probe-{n}", "应急广播建设进展如何")[0])
            except OSError as exc:  # refused, reset: the port closed
                self.refused.append(repr(exc))
            time.sleep(0.1)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=90)


def _library_with_new_phone(folder: Path) -> Path:
    shutil.copytree(NOTICES_DIR, folder)
    text = next(folder.glob("*/notice.txt"))
    body = text.read_text(encoding="utf-8")
    assert OLD_PHONE in body
    text.write_text(body.replace(OLD_PHONE, NEW_PHONE), encoding="utf-8")
    return folder


def _wait_until_every_worker_says(base: str, state: str, timeout: float) -> None:
    deadline, in_a_row = time.monotonic() + timeout, 0
    while in_a_row < 8:  # new connections land on both workers
        _status, body = _health(base)
        in_a_row = in_a_row + 1 if (body.get("index") or {}).get("state") == state else 0
        assert time.monotonic() < deadline, f"the workers did not reach {state!r}: {body}"
        time.sleep(0.25)


def test_changed_notices_are_answered_as_built_until_the_new_index_is_swapped_in(bot, index_dir, tmp_path):
    library = _library_with_new_phone(tmp_path / "notices")
    own = tmp_path / "index"
    shutil.copytree(index_dir, own)
    env = dict(os.environ, INDEX_DIR=str(own), LIBRARY_DIR=str(library))
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        prober = _Prober(base)
        prober.start()
        status, reply, _ = _post(base, "old", "联系电话是多少")
        assert status == 200 and OLD_PHONE in _text(reply)  # the notice as the index was built
        assert _health(base)[1]["index"]["state"] in ("stale", "ok")
        _wait_until_every_worker_says(base, "ok", timeout=300)
        status, reply, _ = _post(base, "new", "联系电话是多少")
        assert status == 200 and NEW_PHONE in _text(reply) and OLD_PHONE not in _text(reply)
        with urllib.request.urlopen(base + "/notice", timeout=10) as page:
            assert NEW_PHONE in page.read().decode()
        prober.stop()
    assert not prober.refused and prober.statuses and set(prober.statuses) == {200}
    generations = {p.resolve() for p in (own / "current", own / "previous")}
    assert len(generations) == 2  # the new build, and the one it replaced, kept as the last good


def test_a_damaged_index_with_none_good_beside_it_says_503_until_rebuilt(bot, index_dir, tmp_path):
    own = tmp_path / "index"
    shutil.copytree(index_dir, own)
    for generation in ("current", "previous"):
        for path in (own / generation).glob("*.faiss"):
            path.write_bytes(path.read_bytes()[:100])
    env = dict(os.environ, INDEX_DIR=str(own))
    with gunicorn(env, tmp_path / "gunicorn.log", listening=True) as base:
        prober = _Prober(base)
        prober.start()
        # The build embeds every passage and 3,000 labelled questions: tens of seconds.
        status, body, headers = _post(base, "early", "应急广播建设进展如何")
        assert status == 503 and body["error"] == "updating", body
        assert "正在更新" in body["message"] and OLD_PHONE in body["message"] and int(headers["Retry-After"]) > 0
        assert _health(base)[1]["status"] == "building"
        _wait_until_every_worker_says(base, "ok", timeout=300)
        status, reply, _ = _post(base, "late", "应急广播建设进展如何")
        assert status == 200 and reply[0]["custom"]["citations"][0]["anchor"] == "item-16"
        prober.stop()
    assert not prober.refused and set(prober.statuses) <= {200, 503} and prober.statuses[-1] == 200


@contextlib.contextmanager
def _cramped_folder(kind: str, folder: Path, size_bytes: int):
    """A folder that cannot take a new build: read-only, or a file system with no room left.
    Root mounts a small tmpfs; anyone else gets a read-only folder by its permissions (a full one
    needs the mount)."""
    folder.mkdir()
    options = f"size={size_bytes}" if kind == "full" else "size=64m"
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        if kind == "ro" and os.geteuid() != 0:
            yield lambda: folder.chmod(0o555)
            folder.chmod(0o755)
            return
        # Root without the right to mount (a container without CAP_SYS_ADMIN) ignores permissions.
        pytest.skip("a read-only or full file system needs a small tmpfs, and mount is not permitted here")
    try:
        yield (lambda: subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)) if kind == "ro" \
            else (lambda: None)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("kind, words", [("ro", "只读"), ("full", "空间不足")])
def test_a_read_only_or_full_index_folder_is_said_plainly_and_the_last_good_index_answers(
        bot, index_dir, tmp_path, kind, words):
    library = _library_with_new_phone(tmp_path / "notices")
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    with _cramped_folder(kind, tmp_path / "disk", size + 2_000_000) as seal:
        own = tmp_path / "disk" / "index"
        shutil.copytree(index_dir, own, symlinks=True)
        seal()
        env = dict(os.environ, INDEX_DIR=str(own), LIBRARY_DIR=str(library))
        log = tmp_path / "gunicorn.log"
        with gunicorn(env, log) as base:
            status, reply, _ = _post(base, "a", "联系电话是多少")
            assert status == 200 and OLD_PHONE in _text(reply)
            status, body = _health(base)
            assert status == 200 and body["index"]["state"] == "stale"
            assert words in body["index"]["build_error"] and " / " in body["index"]["build_error"]
            assert _post(base, "b", "应急广播建设进展如何")[1][0]["custom"]["citations"][0]["anchor"] == "item-16"
        assert words in log.read_text(encoding="utf-8", errors="replace")
        assert not list(own.glob(".current-*"))
