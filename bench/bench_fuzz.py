"""10,000 generated hostile requests (bench/_hostile.py) against make serve's gunicorn, plus raw
malformed HTTP (bad chunk sizes, broken request lines, header floods): every one must get an
answer or a 4xx, never a 5xx, and the server must still answer a question afterwards.

    python -m bench.bench_fuzz        (writes the "fuzz" section of bench/RESULTS.md)
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import time
from collections import Counter

from bench._hostile import hostile_request
from bench._results import write_section
from bench._serve import gunicorn

REQUESTS = 10_000
RAW = [
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n{}",
    b"GARBAGE / HTTP/9.9\r\n\r\n",
    b"POST /webhooks/rest/webhook?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
]


def _raw(port: int, payload: bytes) -> int | None:
    """The status line's code for a raw request, or None when the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        try:
            head = s.recv(64)
        except OSError:
            return None
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def main() -> None:
    rng = random.Random(20261202)
    statuses: Counter = Counter()
    env = dict(os.environ, RATE_LIMITS="off")
    started = time.perf_counter()
    with gunicorn(env) as base:
        port = int(base.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(REQUESTS):
            body, content_type, method = hostile_request(rng)
            data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
            headers = {"Content-Type": content_type} if content_type else {}
            try:
                conn.request(method, "/webhooks/rest/webhook", body=data, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (http.client.HTTPException, OSError):
                statuses["connection error"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        raw = Counter(_raw(port, payload) for payload in RAW for _ in range(10))
        conn.request("POST", "/webhooks/rest/webhook", body=json.dumps({"sender": "after", "message": "第十六条"}),
                     headers={"Content-Type": "application/json"})
        after = conn.getresponse()
        still = after.status == 200 and "第16条" in after.read().decode("utf-8")
    seconds = time.perf_counter() - started
    fives = sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500)
    raw_fives = sum(v for k, v in raw.items() if isinstance(k, int) and k >= 500)
    table = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))
    raw_table = ", ".join(f"{k if k is not None else 'closed'}: {v}" for k, v in sorted(raw.items(), key=lambda kv: str(kv[0])))
    lines = ["## Hostile requests (bench_fuzz)", "",
             f"make serve's gunicorn; {REQUESTS:,} generated requests (bench/_hostile.py: odd characters, lone "
             "surrogates, broken JSON, wrong types and content types, deep nesting, other methods, ordinary "
             f"questions) on one keep-alive connection, then {len(RAW)} kinds of malformed raw HTTP ×10; "
             f"{seconds:.0f} s in all.", "",
             "| requests | 5xx | statuses |", "|---|---|---|",
             f"| {REQUESTS:,} generated | **{fives}** | {table} |",
             f"| {sum(raw.values())} raw malformed | **{raw_fives}** | {raw_table} |", "",
             f"Answering afterwards: {'yes' if still else 'NO'}."]
    print("\n".join(lines))
    write_section("fuzz", "\n".join(lines))


if __name__ == "__main__":
    main()
