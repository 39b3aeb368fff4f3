"""The web front end under load: webhook latency over HTTP next to the in-process answer time,
and throughput of gunicorn (2 workers, as ``make serve``) under concurrent clients.

    python -m bench.bench_server [--clients 8] [--duration 30]

Traffic goes to 127.0.0.1 only. Writes the ``server`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
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
from bench._serve import gunicorn_flags
from knowledge.questions import load_questions
from bench._seed import SEED_QUESTIONS

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
OUT = REPO / "bench" / "out"
WEBHOOK = "/webhooks/rest/webhook"


def questions() -> list[str]:
    """The retrieval question sets (the labelled questions and the held-out set), without duplicates."""
    return list(dict.fromkeys(q.question for path in (SEED_QUESTIONS, DATA / "questions_heldout.tsv")
                              for q in load_questions(path)))


_PREFIXES = ("", "请问", "您好，请问", "想了解一下", "麻烦问一下", "咨询一下", "我想问", "打扰一下，")
_SUFFIXES = ("", "谢谢", "多谢", "麻烦了", "想知道一下")


class Feed:
    """Question texts, each used once (thread-safe): the questions, then rewordings of them.

    The retriever keeps the last 256 query embeddings; a benchmark that repeats a few hundred
    questions measures that cache. Rewording ("请问…谢谢") makes every text new, as citizens'
    questions mostly are.
    """

    def __init__(self, base: list[str]) -> None:
        self.pool = [p + q + s for s in _SUFFIXES for p in _PREFIXES for q in base]
        self._i = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            text = self.pool[self._i % len(self.pool)]
            self._i += 1
            return text

    def take(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]


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


def in_process(feed: Feed, n: int, index_dir: Path, thread_settings: list[int]) -> dict:
    """Time ``dialogue.handle`` and ``answerer.answer`` in this process on new question texts,
    once per torch thread count, and ``handle`` once more on repeated (cached) texts."""
    import torch

    from bot.runtime import build_bot

    bot = build_bot({"INDEX_DIR": str(index_dir)})
    t = time.perf_counter()
    bot.warm_up()
    out = {"warm_up_s": time.perf_counter() - t, "runs": {}}
    before = torch.get_num_threads()
    for q in feed.take(5):  # first calls pay for lazy initialisation
        bot.dialogue.handle("warm", q)
    for threads in thread_settings:
        torch.set_num_threads(threads or os.cpu_count() or 1)  # 0: one per core, as EMBEDDING_THREADS=0
        run = {"handle": [], "answer": [], "repeat": []}
        handled = feed.take(n)
        for i, q in enumerate(handled):
            t = time.perf_counter()
            bot.dialogue.handle(f"bench-{threads}-{i}", q)
            run["handle"].append(time.perf_counter() - t)
        for q in feed.take(n):
            t = time.perf_counter()
            bot.answerer.answer(q)
            run["answer"].append(time.perf_counter() - t)
        for i, q in enumerate(handled[-200:]):  # the last 200 are still in the 256-entry cache
            t = time.perf_counter()
            bot.dialogue.handle(f"bench-r{threads}-{i}", q)
            run["repeat"].append(time.perf_counter() - t)
        out["runs"][threads] = run
    torch.set_num_threads(before)
    return out


def sequential(port: int, feed: Feed, n: int) -> dict:
    times, errors = [], 0
    for i, q in enumerate(feed.take(n)):
        status, elapsed = _post(port, f"seq-{i}", q)
        times.append(elapsed)
        errors += status != 200
    return {"times": times, "errors": errors}


def concurrent(port: int, feed: Feed, clients: int, duration: float) -> dict:
    times: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def client(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            try:
                status, elapsed = _post(port, f"load-{n}-{i % 50}", feed.next())
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
    """:param qs: question texts, sent in turn (and again from the start when wrk runs out)."""
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
    return (f"| wrk | {clients} | {n} | {float(rps):.1f} | {float(p50):.0f} | {float(p95):.0f} | {float(p99):.0f} | "
            f"{errors} (connect {conn_err}, read/write {io_err}, non-2xx {status_err}, timeout {timeouts}) |")


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "–"


def serve_and_load(base: list[str], n: int, index_dir: Path, threads: int, clients: int, duration: float,
                   soak: float) -> dict:
    """Start gunicorn as ``make serve`` does (the Makefile's GUNICORN_FLAGS), then measure it; wrk
    runs for ``soak`` seconds."""
    port = _free_port()
    # one client machine sends every request: the server is measured, not the rate limit
    env = dict(os.environ, INDEX_DIR=str(index_dir), PYTHONUNBUFFERED="1", RATE_LIMITS="off")
    env["EMBEDDING_THREADS"] = str(threads)
    env.pop("OMP_NUM_THREADS", None)
    OUT.mkdir(parents=True, exist_ok=True)
    log_file = open(OUT / f"gunicorn-threads{threads}.log", "w", encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), *gunicorn_flags(), "--bind", f"127.0.0.1:{port}",
         "server:create_app()"],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_ready(port, proc)
        ready = time.monotonic() - started
        print(f"gunicorn (EMBEDDING_THREADS={threads}) ready in {ready:.1f} s; sequential run…", flush=True)
        feed = Feed(base)  # every setting gets the same texts, each new to the fresh workers
        for q in feed.take(5):
            _post(port, "warm", q)
        seq = sequential(port, feed, n)
        print("concurrent runs…", flush=True)
        loads = [concurrent(port, feed, c, duration) for c in (1, 2, clients)]
        wrk_row = _wrk(port, feed.take(4000), clients, int(soak))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a worker stuck in a busy native thread pool
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log_file.close()
    return {"ready": ready, "seq": seq, "loads": loads, "wrk": wrk_row}


def _label(threads: int, default: int = 0) -> str:
    if threads == 0:
        return f"EMBEDDING_THREADS=0 (one per core: {os.cpu_count()})"
    return f"EMBEDDING_THREADS={threads}" + (" (the default)" if threads == 1 else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the load test")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per run")
    parser.add_argument("--soak", type=float, default=180, help="seconds of the wrk run (a soak: 3 minutes)")
    parser.add_argument("--questions", type=int, default=200, help="at least this many questions")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    parser.add_argument("--threads", default="1,0",
                        help="comma-separated EMBEDDING_THREADS values to compare (1 is the default; 0: one per core)")
    # Called by bench.run_all (make bench) without arguments: its own argv is not ours.
    args = parser.parse_args(argv if argv is not None or __name__ == "__main__" else [])
    settings = [int(t) for t in args.threads.split(",")]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    base = questions()
    n = max(args.questions, len(base))
    index_dir = OUT / "server-index"
    print(f"{n} questions per run; in-process runs…", flush=True)
    inproc = in_process(Feed(base), n, index_dir, settings)
    default = 0
    soak = args.soak
    served = {t: serve_and_load(base, n, index_dir, t, args.clients, args.duration, soak) for t in settings}

    load = os.getloadavg()
    lines = [
        "## server — webhook latency and throughput",
        "",
        f"`python -m bench.bench_server`: {n} questions per run, each text new to the process (the {len(base)} "
        "labelled and held-out questions, then rewordings such as “请问…谢谢”, since the retriever caches "
        "its last 256 query embeddings), in-process and through `POST /webhooks/rest/webhook` on 127.0.0.1 against gunicorn as `make serve` runs "
        "it (the Makefile's `GUNICORN_FLAGS`: 2 gthread workers of 32 threads, `--preload`; a new connection per request). Each setting of "
        "`EMBEDDING_THREADS` (inference threads per process) is measured back to back. "
        f"Bot warm-up in-process {inproc['warm_up_s']:.1f} s; gunicorn ready in "
        + ", ".join(f"{served[t]['ready']:.1f} s ({_label(t, default)})" for t in settings) + ".",
        "",
        "| path | threads | n | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in settings:
        run = inproc["runs"][t]
        lines.append(f"| in-process `answerer.answer()` | {_label(t, default)} | {n} | {_ms(run['answer'], 50)} | "
                     f"{_ms(run['answer'], 95)} | {_ms(run['answer'], 99)} | – |")
        lines.append(f"| in-process `dialogue.handle()` (intent + answer) | {_label(t, default)} | {n} | "
                     f"{_ms(run['handle'], 50)} | {_ms(run['handle'], 95)} | {_ms(run['handle'], 99)} | – |")
        seq = served[t]["seq"]
        lines.append(f"| in-process `dialogue.handle()`, repeated question (cached embedding) | {_label(t, default)} | "
                     f"{len(run['repeat'])} | {_ms(run['repeat'], 50)} | {_ms(run['repeat'], 95)} | {_ms(run['repeat'], 99)} | – |")
        lines.append(f"| HTTP webhook, one client | {_label(t, default)} | {n} | {_ms(seq['times'], 50)} | "
                     f"{_ms(seq['times'], 95)} | {_ms(seq['times'], 99)} | {seq['errors']} |")
    lines += [
        "",
        f"Concurrent load on the same gunicorn (Python threads + http.client, {args.duration:.0f} s per run, "
        f"a new question text per request; the last row of each setting is wrk, {soak:.0f} s, with a Lua script "
        "POSTing the same questions):",
        "",
        "| threads | client | clients | requests ok | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in settings:
        for r in served[t]["loads"]:
            errs = r["errors"]
            detail = "" if not errs else " (" + ", ".join(f"{k}: {v}" for k, v in r["statuses"].items() if k != "200") + ")"
            lines.append(f"| {_label(t, default)} | python | {r['clients']} | {r['ok']} | {r['rps']:.1f} | "
                         f"{_ms(r['times'], 50)} | {_ms(r['times'], 95)} | {_ms(r['times'], 99)} | {errs}{detail} |")
        if served[t]["wrk"]:
            lines.append(f"| {_label(t, default)} | " + served[t]["wrk"].lstrip("| "))
    lines += ["", f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (the 2 cores are shared with "
              "other work, so figures vary run to run)."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("server", markdown)


if __name__ == "__main__":
    main()
