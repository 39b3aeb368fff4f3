"""What the public internet sends a chat webhook: generated hostile requests (odd characters, broken
JSON, wrong types and content types, deep nesting, other methods) mixed with ordinary questions.
Shared by tests/test_hostile_input.py (2,000 through the app) and bench/bench_fuzz.py (10,000
through make serve's gunicorn)."""

from __future__ import annotations

import json
import random

NASTY = ["\ud800", "\udfff", "\x00", "\x1b[31m", "\u202e", "\ufeff", "😀" * 30, "<script>alert(1)</script>",
        "' OR 1=1 --", "%s%n", "\\", "问" * 600, "１２３", "\u200b", "null", "{}", "第99999999999条"]


def hostile_request(rng: random.Random):
    """One generated request: a body, its content type and method."""
    kind = rng.randrange(8)
    text = lambda: "".join(rng.choice(NASTY + ["应急广播", "那连南呢", "你好", " "]) for _ in range(rng.randrange(1, 4)))  # noqa: E731
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), "application/json", "POST"
    if kind == 1:
        return "[" * rng.randrange(1, 3000), "application/json", "POST"
    if kind == 2:
        return json.dumps({"sender": text(), "message": text()}), rng.choice(["text/plain", "application/xml", ""]), "POST"
    if kind == 3:
        value = rng.choice([None, 7, 1e308, -1, True, [], {}, [text()], {"x": text()}])
        return json.dumps({"sender": rng.choice([text(), value]), "message": rng.choice([text(), value])}), \
            "application/json", "POST"
    if kind == 4:
        meta = rng.choice([text(), [1, 2], {"page": text(), "doc": text()}, {"k" * rng.randrange(1, 50): text()}])
        return json.dumps({"sender": "s", "message": text(), "metadata": meta}), "application/json", "POST"
    if kind == 5:
        return json.dumps({"sender": f"f{rng.randrange(50)}", "message": text()}), "application/json", \
            rng.choice(["POST", "PUT", "DELETE", "GET", "PATCH"])
    if kind == 6:
        return '{"sender": "a", "message": "' + rng.choice(["\\ud800", "\\udc00x", "\\u0000", "\\uZZZZ", "\\"]) + '"}', \
            "application/json", "POST"
    return json.dumps({"sender": f"ok{rng.randrange(30)}", "message": rng.choice(["应急广播建设进展如何", "那连南呢？", "还有呢",
                                                                                  "明天天气怎么样", "你们整改就是走过场吧"])}), \
        "application/json", "POST"
