"""Conversations under make serve's setting: gunicorn, 2 workers, the SQL tracker store (SQLite),
8 concurrent clients. Measures the share of follow-ups answered in their context, and latency.

    python -m bench.bench_context        (writes the "context" section of bench/RESULTS.md)
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench._results import write_section
from bench._serve import gunicorn

CLIENTS = 8
ROUNDS = 25  # conversations per client: 200 follow-ups
CONVERSATIONS = [("应急广播建设进展如何", "那连南呢？", "item-16", "连南"),
                 ("第二十三条", "那经费怎么用的？", "item-24", ""),
                 ("旅游厕所建了多少座", "那连南呢？", None, "没有单独说明连南"),
                 ("应急广播建设进展如何", "还有呢", "item-16", "还写道")]


def _post(base: str, sender: str, message: str) -> tuple[dict, float]:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        reply = json.loads(response.read())[0]
    return reply, (time.perf_counter() - started) * 1000


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-context-"))
    endpoints = folder / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  url: sqlite:///{folder / 'trackers.db'}\n", encoding="utf-8")
    # one client machine sends every question: the throughput is measured, not the rate limit
    env = dict(os.environ, ENDPOINTS=str(endpoints), RATE_LIMITS="off")
    with gunicorn(env) as base:
        kept, latencies, errors = [], [], []

        def client(n: int) -> None:
            for round_ in range(ROUNDS):
                first, follow, anchor, fragment = CONVERSATIONS[(n + round_) % len(CONVERSATIONS)]
                sender = f"bench-{n}-{round_}"
                try:
                    _, ms1 = _post(base, sender, first)
                    reply, ms2 = _post(base, sender, follow)
                except OSError as exc:
                    errors.append(repr(exc))
                    continue
                cited = reply["custom"]["citations"][0]["anchor"] if reply["custom"]["citations"] else None
                kept.append(cited == anchor and fragment in reply["text"])
                latencies.extend((ms1, ms2))

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
    share = sum(kept) / len(kept) if kept else 0.0
    lines = [
        "## Conversations across workers (bench_context)",
        "",
        f"make serve's gunicorn (2 gthread workers), SQL tracker store (SQLite, WAL), {CLIENTS} concurrent clients, "
        f"{len(kept)} two-turn conversations (a topic, then a follow-up that needs it).",
        "",
        "| follow-ups in context | errors | requests | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        f"| {sum(kept)}/{len(kept)} ({share:.3f}) | {len(errors)} | {len(latencies)} | "
        f"{len(latencies) / seconds:.1f} | {statistics.median(latencies) if latencies else 0:.0f} | {p99:.0f} |",
    ]
    print("\n".join(lines))
    write_section("context", "\n".join(lines))


if __name__ == "__main__":
    main()
