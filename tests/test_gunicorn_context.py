"""make serve's setting: gunicorn with 2 workers and a shared SQL tracker store. Every follow-up
keeps its context, whichever worker it reaches."""

from __future__ import annotations

import json
import os
import threading
import urllib.request

import pytest

from bench._serve import gunicorn

pytestmark = pytest.mark.slow
CONVERSATIONS = [("应急广播建设进展如何", "那连南呢？", "item-16", "连南"),
                 ("第二十三条", "那经费怎么用的？", "item-24", ""),
                 ("旅游厕所建了多少座", "那连南呢？", None, "没有单独说明连南")]



def _post(base: str, sender: str, message: str) -> dict:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())[0]


def test_follow_ups_keep_their_context_across_two_workers(index_dir, bot, tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  url: sqlite:///{tmp_path / 'trackers.db'}\n", encoding="utf-8")
    env = dict(os.environ, INDEX_DIR=str(index_dir), ENDPOINTS=str(endpoints))
    with gunicorn(env, tmp_path / "gunicorn.log") as base:
        results, errors = [], []

        def client(n: int) -> None:
            try:
                for round_ in range(5):
                    first, follow, anchor, fragment = CONVERSATIONS[(n + round_) % len(CONVERSATIONS)]
                    sender = f"gunicorn-{n}-{round_}"
                    _post(base, sender, first)
                    reply = _post(base, sender, follow)
                    cited = reply["custom"]["citations"][0]["anchor"] if reply["custom"]["citations"] else None
                    results.append((follow, cited == anchor and fragment in reply["text"], reply["text"][:60]))
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(repr(exc))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        assert len(results) == 40
        lost = [r for r in results if not r[1]]
        assert not lost, f"{len(lost)} of 40 follow-ups lost their context: {lost[:3]}"
