"""What a message of the longest allowed length costs next to a typical question, in one run,
through make serve's gunicorn (one client, one question at a time, each message new, so no cache
helps).

    python -m bench.bench_long        (writes the "long" section of bench/RESULTS.md)

Typical questions: the held-out single questions. Long ones (MAX_MESSAGE_CHARS, 500 characters):
one character repeated, random common characters, a story with its question at the end, a
question said over and over, and random rare characters.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
import urllib.request
from pathlib import Path

from bench._results import percentile, write_section
from bench._serve import gunicorn
from bot.evaluate import load_questions

REPO = Path(__file__).resolve().parent.parent
LENGTH = 500
ROUNDS = 12


def _post(base: str, sender: str, message: str) -> float:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        response.read()
    return (time.perf_counter() - started) * 1000


def _long_kinds(rng: random.Random, common: str) -> dict:
    def story() -> str:
        filler = "".join(rng.choice(common) for _ in range(LENGTH))
        ask = "请问连南的应急广播系统建好了吗？"
        return ("我是连南县的村民。" + filler)[: LENGTH - len(ask)] + ask

    return {
        "one character ×500": lambda: rng.choice(common) * LENGTH,
        "random common characters": lambda: "".join(rng.choice(common) for _ in range(LENGTH)),
        "a story, the question last": story,
        "a question said over and over": lambda: (rng.choice(["应急广播建设进展如何？", "旅游厕所建了多少座，",
                                                               "工会经费怎么用的；"]) * 60)[:LENGTH],
        "random rare characters": lambda: "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(LENGTH)),
    }


def main() -> None:
    typical = [q.question for q in load_questions(REPO / "tests" / "data" / "questions_heldout.tsv")]
    common = "".join(dict.fromkeys("".join(typical)))  # the characters questions use
    rng = random.Random(7)
    kinds = _long_kinds(rng, common)
    env = dict(os.environ, RATE_LIMITS="off")
    with gunicorn(env) as base:
        for q in typical[:5]:  # warm code paths (these are not timed)
            _post(base, "warm", q)
        times: dict[str, list[float]] = {"typical question": []}
        for kind in kinds:
            times[kind] = []
        # interleaved, so both kinds see the same machine
        for round_ in range(ROUNDS):
            for i, q in enumerate(typical[round_ * 8:(round_ + 1) * 8]):
                times["typical question"].append(_post(base, f"t-{round_}-{i}", q))
            for kind, make in kinds.items():
                times[kind].append(_post(base, f"l-{round_}-{kind}", make()))
    base_p50 = statistics.median(times["typical question"])
    lines = ["## Long messages (bench_long)", "",
             f"make serve's gunicorn, one client, one message at a time; {ROUNDS} rounds, each message new. "
             f"A long message is {LENGTH} characters (MAX_MESSAGE_CHARS); the bot reads at most its asking "
             "sentences within 64 characters (index.text.condense; the longest labelled question has 39), and jieba's HMM only clauses of up to 40.",
             "", "| message | n | p50 ms | p95 ms | p50 ÷ typical p50 |", "|---|---|---|---|---|"]
    for kind, values in times.items():
        p50 = statistics.median(values)
        lines.append(f"| {kind} | {len(values)} | {p50:.0f} | {percentile(values, 95):.0f} | {p50 / base_p50:.2f} |")
    worst = max(statistics.median(v) for k, v in times.items() if k != "typical question") / base_p50
    lines += ["", f"Worst long-message ratio: **{worst:.2f}** (target ≤ 3)."]
    print("\n".join(lines))
    write_section("long", "\n".join(lines))


if __name__ == "__main__":
    main()
