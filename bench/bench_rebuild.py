"""Answers while the index is rebuilt: make serve's gunicorn started on notices newer than its
index, so it answers from the last good index while ``bot index`` builds a new one beside it at
``nice 10``, then swaps it in. One client asks a new question after another throughout.

    python -m bench.bench_rebuild        (writes the "rebuild" section of bench/RESULTS.md)

Reported per phase (answering from the last good index while the build runs; after the swap):
requests, errors (anything but 200, or a refused connection), p50 and p99, and how long the
build and the swap took.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench._results import percentile, write_section
from bench._serve import gunicorn
from bot.evaluate import load_questions
from knowledge.store import NOTICES_DIR

REPO = Path(__file__).resolve().parent.parent
AFTER_SWAP_REQUESTS = 200


def _ask(base: str, sender: str, message: str) -> tuple[int, float]:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0  # refused or reset: the port closed
    return status, (time.perf_counter() - started) * 1000


def _state(base: str) -> str:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            return (json.loads(response.read()).get("index") or {}).get("state", "")
    except (OSError, ValueError):
        return ""


def _row(phase: str, results: list[tuple[int, float]], seconds: float) -> str:
    ms = [m for status, m in results if status == 200]
    errors = sum(1 for status, _ in results if status != 200)
    return (f"| {phase} | {seconds:.0f} s | {len(results)} | {errors} | "
            f"{percentile(ms, 50):.0f} | {percentile(ms, 99):.0f} |")


def main() -> None:
    questions = [q.question for q in load_questions(REPO / "tests" / "data" / "questions_heldout.tsv")]
    work = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    try:
        index = work / "index"
        shutil.copytree(REPO / "index" / "build", index)
        library = work / "notices"
        shutil.copytree(NOTICES_DIR, library)
        text = next(library.glob("*/notice.txt"))
        text.write_text(text.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # newer than the index
        env = dict(os.environ, INDEX_DIR=str(index), LIBRARY_DIR=str(library), RATE_LIMITS="off")
        n = 0
        with gunicorn(env, work / "gunicorn.log") as base:
            started = time.monotonic()
            during: list[tuple[int, float]] = []
            in_a_row = 0
            while in_a_row < 8:  # new connections land on both workers: both have swapped
                in_a_row = in_a_row + 1 if _state(base) == "ok" else 0
                n += 1
                during.append(_ask(base, f"rebuild-{n}", f"{questions[n % len(questions)]}（{n}）"))
                if time.monotonic() - started > 900:
                    raise RuntimeError("the rebuild did not finish in 15 minutes")
            swapped = time.monotonic() - started
            after = []
            for _ in range(AFTER_SWAP_REQUESTS):
                n += 1
                after.append(_ask(base, f"rebuild-{n}", f"{questions[n % len(questions)]}（{n}）"))
            after_seconds = time.monotonic() - started - swapped
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "## Answers while the index is rebuilt (bench_rebuild)",
        "",
        "make serve's gunicorn started on notices newer than its index: it answers from the last good",
        "index while `bot index --if-needed` builds a new one at `nice 10`, then each worker swaps it in.",
        "One client, a new question each time, on new connections.",
        "",
        "| phase | lasted | requests | errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        _row("answering from the last good index while the build runs, until both workers swapped", during, swapped),
        _row("after the swap", after, after_seconds),
    ]
    write_section("rebuild", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
