"""The conversation log's cost: the webhook's latency with the log on (SQLite under a temp
folder, as make serve's default) and off, in the same run, question by question alternating.

    python -m bench.bench_log        (writes the "log" section of bench/RESULTS.md)
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench._results import percentile, write_section
from bench._seed import SEED_QUESTIONS
from bot.evaluate import load_questions
from bot.runtime import build_bot

ROUNDS = 3


def main() -> None:
    from server import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-log-"))
    try:
        bot = build_bot()
        bot.warm_up()
        on = create_app({"TESTING": True, "BOT": bot, "CONVERSATION_LOG": "on", "RATE_LIMITS": "off",
                         "DATABASE_URL": f"sqlite:///{folder / 'log.sqlite3'}"}).test_client()
        off = create_app({"TESTING": True, "BOT": bot, "CONVERSATION_LOG": "off", "RATE_LIMITS": "off"}).test_client()
        questions = [q.question for q in load_questions(SEED_QUESTIONS)][:300]
        times = {"on": [], "off": []}
        for q in questions[:20]:  # warm both paths
            for client in (on, off):
                client.post("/webhooks/rest/webhook", json={"sender": f"warm-{q}", "message": q})
        n = 0
        for _ in range(ROUNDS):
            for q in questions:
                n += 1
                for name, client in (("on", on), ("off", off)) if n % 2 else (("off", off), ("on", on)):
                    started = time.perf_counter()
                    response = client.post("/webhooks/rest/webhook", json={"sender": f"{name}-{n}", "message": q})
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
        log = on.application.extensions["conversation_log"]
        log.flush(60)
        written = log.status()["written"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    p50 = {k: percentile(v, 50) for k, v in times.items()}
    p95 = {k: percentile(v, 95) for k, v in times.items()}
    ratio = p50["on"] / p50["off"]
    markdown = (
        "## The conversation log's cost (bench_log)\n\n"
        f"The webhook in-process (Flask test client), the same bot, {len(times['on'])} questions each, "
        "alternating log on (SQLite, WAL, a writer thread) and off, question by question.\n\n"
        "| log | p50 ms | p95 ms | mean ms |\n|---|---|---|---|\n"
        + "".join(f"| {k} | {p50[k]:.1f} | {p95[k]:.1f} | {statistics.mean(times[k]):.1f} |\n" for k in ("off", "on"))
        + f"\np50 with the log / without: **{ratio:.2f}×** (target ≤ 1.1×); rows written: {written}.\n"
    )
    write_section("log", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
