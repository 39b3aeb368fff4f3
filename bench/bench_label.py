"""A staff label, from the click to every worker answering with it (issue 16: "within seconds, in
every worker, without a restart"), under make serve's gunicorn (2 workers) on 2 cores.

    python -m bench.bench_label        (writes the "label" section of bench/RESULTS.md)

A citizen's question is declined; staff label it with the passage that answers it through the
console's API; then new connections (which reach both workers) ask it until eight in a row cite
that passage. The same for undoing the label. For comparison: when the index built in the
background with the label (what every worker answered with before labels were applied live) is in.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from bench._results import write_section
from bench._seed import SEED_DOC
from bench._serve import gunicorn
from bot.convlog import upgrade
from bot.staff import StaffAccounts
from index.embedding import Embedder
from index.search import Retriever
from knowledge.store import NOTICES_DIR

QUESTION = "图书馆的咖啡好喝吗"
ANCHOR = "item-10"
PASSWORD = "bench-label-password"
IN_A_ROW = 8  # new connections: both workers


def _post(opener, url: str, body: dict, headers: dict | None = None, method: str = "POST") -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with opener.open(request, timeout=60) as response:
        return json.loads(response.read())


def _cited(base: str, sender: str) -> list[str]:
    reply = _post(urllib.request.build_opener(), base + "/webhooks/rest/webhook", {"sender": sender, "message": QUESTION})
    return [c["anchor"] for c in reply[-1]["custom"]["citations"]] if not reply[-1]["custom"].get("abstained") else []


def _until(base: str, wanted, timeout: float = 180.0) -> float:
    """Seconds until ``IN_A_ROW`` answers in a row on new connections satisfy ``wanted``."""
    started, in_a_row, n = time.perf_counter(), 0, 0
    while in_a_row < IN_A_ROW:
        n += 1
        in_a_row = in_a_row + 1 if wanted(_cited(base, f"probe-{time.monotonic()}-{n}")) else 0
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"not answered as wanted in {timeout:.0f} s")
        if not in_a_row:
            time.sleep(0.1)
    return time.perf_counter() - started


def _built_at(base: str) -> str | None:
    with urllib.request.urlopen(base + "/healthz", timeout=30) as response:  # details: from this machine
        return (json.loads(response.read()).get("index") or {}).get("built_at")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-label-"))
    try:
        library = root / "notices"
        shutil.copytree(NOTICES_DIR / SEED_DOC, library / SEED_DOC)
        Retriever(Embedder(), library_dir=library, build_dir=root / "index").rebuild()
        url = f"sqlite:///{root / 'log.sqlite3'}"
        upgrade(url)
        StaffAccounts(url).add("bench", PASSWORD)
        env = dict(os.environ, LIBRARY_DIR=str(library), INDEX_DIR=str(root / "index"), DATABASE_URL=url)
        with gunicorn(env, root / "gunicorn.log") as base:
            assert ANCHOR not in _cited(base, "before")[:1], "the question is answered from the item before any label"
            built_before = _built_at(base)
            staff = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            token = _post(staff, base + "/staff/api/login", {"username": "bench", "password": PASSWORD})["csrf_token"]
            started = time.perf_counter()
            label = _post(staff, base + "/staff/api/labels", {"question": QUESTION, "doc": SEED_DOC, "anchor": ANCHOR},
                          {"X-CSRFToken": token})["label"]
            click = time.perf_counter() - started
            everywhere = click + _until(base, lambda cited: cited[:1] == [ANCHOR])
            built = 0.0
            while _built_at(base) == built_before:  # the index built in the background with the label
                time.sleep(0.5)
                built = time.perf_counter() - started
                if built > 300:
                    raise SystemExit("the background build did not finish in 300 s")
            started = time.perf_counter()
            _post(staff, base + f"/staff/api/labels/{label['id']}", {}, {"X-CSRFToken": token}, method="DELETE")
            undone = time.perf_counter() - started + _until(base, lambda cited: cited[:1] != [ANCHOR])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    markdown = (
        "## A staff label, live in every worker (bench_label)\n\n"
        f"make serve's gunicorn (2 workers), the seed notice; a declined question (“{QUESTION}”) labelled with\n"
        f"第10条 through `POST /staff/api/labels`, then asked on new connections until {IN_A_ROW} in a row cite it.\n\n"
        "| what | seconds | target |\n|---|---|---|\n"
        f"| the label request (written, and answered with by the worker that took it) | {click:.2f} | — |\n"
        f"| from the click until every worker answers with it | {everywhere:.1f} | ≤ 5 |\n"
        f"| from the click until the index built in the background with it is in (the old path) | {built:.1f} | — |\n"
        f"| undo, until every worker has let it go | {undone:.1f} | ≤ 5 |\n"
    )
    write_section("label", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
