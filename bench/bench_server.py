"""The web front end under load: webhook latency over HTTP next to the in-process answer time,
and throughput of gunicorn (2 workers, as ``make serve``) under concurrent clients.

    python -m bench.bench_server [--clients 8] [--duration 30]

Traffic goes to 127.0.0.1 only. Writes the ``server`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._results import percentile, write_section

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
OUT = REPO / "bench" / "out"
WEBHOOK = "/webhooks/rest/webhook"


def questions(minimum: int = 200) -> list[str]:
    """The retrieval question sets, then light rewordings of them until there are ``minimum``."""
    base: list[str] = []
    for name in ("questions_tune.tsv", "questions_heldout.tsv"):
        with open(DATA / name, encoding="utf-8") as f:
            base += [row["question"] for row in csv.DictReader(f, delimiter="\t") if row.get("question")]
    out = list(dict.fromkeys(base))
    forms = ("请问{}", "{}谢谢", "想了解一下：{}")
    i = 0
    while len(out) < minimum:
        out.append(forms[i % len(forms)].format(base[i % len(base)]))
        i += 1
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, sender: str, message: str) -> tuple[int, float]:
    body = json.dumps({"sender": sender, "message": message}, ensure_ascii=False).encode()
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", WEBHOOK, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        status = response.status
        if status == 200:
            json.loads(data)
    finally:
        conn.close()
    return status, time.perf_counter() - start


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("gunicorn did not become ready")


def in_process(qs: list[str], index_dir: Path) -> dict:
    from bot.runtime import build_bot

    bot = build_bot({"INDEX_DIR": str(index_dir)})
    t = time.perf_counter()
    bot.warm_up()
    warm = time.perf_counter() - t
    for q in qs[:5]:  # first calls pay for lazy initialisation
        bot.dialogue.handle("warm", q)
    handle, answer = [], []
    for i, q in enumerate(qs):
        t = time.perf_counter()
        bot.dialogue.handle(f"bench-{i}", q)
        handle.append(time.perf_counter() - t)
        t = time.perf_counter()
        bot.answerer.answer(q)
        answer.append(time.perf_counter() - t)
    return {"warm_up_s": warm, "handle": handle, "answer": answer}


def sequential(port: int, qs: list[str]) -> dict:
    for q in qs[:5]:
        _post(port, "warm", q)
    times, errors = [], 0
    for i, q in enumerate(qs):
        status, elapsed = _post(port, f"seq-{i}", q)
        times.append(elapsed)
        errors += status != 200
    return {"times": times, "errors": errors}


def concurrent(port: int, qs: list[str], clients: int, duration: float) -> dict:
    times: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def client(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            try:
                status, elapsed = _post(port, f"load-{n}-{i % 50}", qs[i % len(qs)])
                key = str(status)
            except Exception as exc:  # a refused or reset connection counts as an error
                key, elapsed = type(exc).__name__, None
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
                if elapsed is not None and key == "200":
                    times.append(elapsed)
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = statuses.get("200", 0)
    return {"clients": clients, "wall": wall, "ok": ok, "errors": sum(statuses.values()) - ok,
            "statuses": statuses, "times": times, "rps": ok / wall}


def _wrk(port: int, qs: list[str], clients: int, duration: int) -> str | None:
    """The same load through wrk (C, so the client costs little CPU), when wrk is installed."""
    if not shutil.which("wrk"):
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    script = OUT / "webhook.lua"
    bodies = [json.dumps({"sender": f"wrk-{i % 50}", "message": q}, ensure_ascii=False) for i, q in enumerate(qs)]
    lua_list = ",\n".join("[==[" + b + "]==]" for b in bodies)
    script.write_text(
        "local bodies = {\n" + lua_list + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('POST', '" + WEBHOOK + "', {['Content-Type']='application/json'}, bodies[(i % #bodies) + 1])\nend\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('WRK %d %d %d %d %d %.1f %.1f %.1f\\n', summary.requests, summary.errors.connect,"
        " summary.errors.read + summary.errors.write, summary.errors.status, summary.errors.timeout,"
        " latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))\nend\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(clients), "-d", f"{duration}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=duration + 60,
    )
    line = next((l for l in result.stdout.splitlines() if l.startswith("WRK ")), None)
    if not line:
        return f"wrk failed: {result.stderr.strip() or result.stdout.strip()}"
    n, conn_err, io_err, status_err, timeouts, p50, p95, p99 = line.split()[1:]
    rps = next((l.split()[1] for l in result.stdout.splitlines() if l.startswith("Requests/sec")), "?")
    errors = int(conn_err) + int(io_err) + int(status_err) + int(timeouts)
    return (f"| wrk, {clients} connections, {duration} s | {n} | {rps} | {float(p50):.0f} | {float(p95):.0f} | "
            f"{float(p99):.0f} | {errors} (connect {conn_err}, read/write {io_err}, non-2xx {status_err}, timeout {timeouts}) |")


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "–"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the load test")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load per run")
    parser.add_argument("--questions", type=int, default=200, help="at least this many questions")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    qs = questions(args.questions)
    index_dir = OUT / "server-index"
    print(f"{len(qs)} questions; in-process run…", flush=True)
    inproc = in_process(qs, index_dir)

    port = _free_port()
    env = dict(os.environ, INDEX_DIR=str(index_dir), PYTHONUNBUFFERED="1")
    log_file = open(OUT / "gunicorn.log", "w", encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--preload", "--timeout", "60", "server:create_app()"],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_ready(port, proc)
        ready = time.monotonic() - started
        print(f"gunicorn ready in {ready:.1f} s; sequential run…", flush=True)
        seq = sequential(port, qs)
        print("concurrent runs…", flush=True)
        loads = [concurrent(port, qs, n, args.duration) for n in (1, 2, args.clients)]
        wrk_row = _wrk(port, qs, args.clients, int(args.duration))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log_file.close()

    load = os.getloadavg()
    lines = [
        "## server — webhook latency and throughput",
        "",
        f"`python -m bench.bench_server`: {len(qs)} questions (tests/data/questions_*.tsv and rewordings), "
        "each through `POST /webhooks/rest/webhook` on 127.0.0.1 (a new connection per request, as gunicorn's "
        f"sync workers close them) and in-process. Bot warm-up in-process {inproc['warm_up_s']:.1f} s; gunicorn "
        f"(`--workers 2 --preload`) ready in {ready:.1f} s.",
        "",
        "| path | n | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
        f"| in-process `answerer.answer()` | {len(qs)} | {_ms(inproc['answer'], 50)} | {_ms(inproc['answer'], 95)} | {_ms(inproc['answer'], 99)} | – |",
        f"| in-process `dialogue.handle()` (intent + answer) | {len(qs)} | {_ms(inproc['handle'], 50)} | {_ms(inproc['handle'], 95)} | {_ms(inproc['handle'], 99)} | – |",
        f"| HTTP webhook, one client, gunicorn 2 workers | {len(qs)} | {_ms(seq['times'], 50)} | {_ms(seq['times'], 95)} | {_ms(seq['times'], 99)} | {seq['errors']} |",
        "",
        f"Concurrent load against the same gunicorn (Python threads + http.client, {args.duration:.0f} s per run, "
        "questions in rotation):",
        "",
        "| clients | requests ok | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in loads:
        errs = r["errors"]
        detail = "" if not errs else " (" + ", ".join(f"{k}: {v}" for k, v in r["statuses"].items() if k != "200") + ")"
        lines.append(f"| {r['clients']} | {r['ok']} | {r['rps']:.1f} | {_ms(r['times'], 50)} | {_ms(r['times'], 95)} | "
                     f"{_ms(r['times'], 99)} | {errs}{detail} |")
    if wrk_row:
        lines += ["", "The same load through wrk (a Lua script POSTs the questions in rotation):", "",
                  "| run | requests | req/s | p50 ms | p95 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|", wrk_row]
    lines += ["", f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (the 2 cores are shared, so "
              "figures vary run to run)."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("server", markdown)


if __name__ == "__main__":
    main()
