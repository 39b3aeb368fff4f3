"""Indexing a library of notices, on 2 cores: the seed and the two fictional notices of other
bureaus (tests/data/library/).

    python -m bench.bench_library        (writes the "library" section of bench/RESULTS.md)

- a full rebuild of the three notices into an empty index folder (every passage, sentence and
  labelled question embedded; the model already loaded);
- adding the third notice with ``python -m bot add-notice`` to an index of the other two (the
  command as staff run it: a new process, the model loaded, only the new notice's passages
  embedded);
- how long after that command returns make serve's gunicorn (2 workers) answers from the new
  notice on every worker, without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench._results import write_section
from bench._serve import gunicorn
from index.embedding import Embedder
from index.search import Retriever
from knowledge.store import NOTICES_DIR

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "library"
SEED, HEXI, NANSHAN = "qingyuan-wlj-xuncha-2025", "hexi-wjj-xuncha-2025", "nanshan-jtj-xuncha-2024"
ADD = ["--doc", NANSHAN, "--title", "关于县委第二轮巡察整改情况的通报", "--issuer", "中共南山县交通运输局党组",
       "--date", "2024-11-05", "--period-end", "2024-12-04", "--area", "南山县"]
QUESTION = "农村公路危桥改造得怎么样了"


def _cites(base: str, sender: str) -> list[str]:
    body = json.dumps({"sender": sender, "message": QUESTION}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return [c["doc"] for c in json.loads(response.read())[0]["custom"]["citations"]]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-library-"))
    try:
        library = root / "notices"
        shutil.copytree(NOTICES_DIR / SEED, library / SEED)
        for doc in (HEXI, NANSHAN):
            shutil.copytree(DATA / doc, library / doc)
        embedder = Embedder()
        embedder.embed_queries(["预热"])  # the model loaded, as in a running server
        retriever = Retriever(embedder, library_dir=library, build_dir=root / "full")
        started = time.perf_counter()
        retriever.rebuild()
        full = time.perf_counter() - started
        chunks = len(retriever.chunks)

        shutil.rmtree(library / NANSHAN)
        two = Retriever(embedder, library_dir=library, build_dir=root / "index")
        two.rebuild()
        env = dict(os.environ, LIBRARY_DIR=str(library), INDEX_DIR=str(root / "index"))
        with gunicorn(env, root / "gunicorn.log") as base:
            assert NANSHAN not in _cites(base, "before")
            started = time.perf_counter()
            added = subprocess.run([sys.executable, "-m", "bot", "add-notice", str(DATA / NANSHAN / "notice.txt"), *ADD],
                                   cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            add = time.perf_counter() - started
            if added.returncode != 0:
                raise SystemExit(added.stderr[-2000:])
            started, in_a_row, n = time.perf_counter(), 0, 0
            while in_a_row < 8:  # new connections: both workers
                n += 1
                in_a_row = in_a_row + 1 if _cites(base, f"after-{n}")[:1] == [NANSHAN] else 0
                if time.perf_counter() - started > 120:
                    raise SystemExit("the new notice was not picked up in 120 s")
                time.sleep(0.1)
            picked = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    markdown = (
        "## Indexing a library of notices (bench_library)\n\n"
        "The seed and the two fictional notices of other bureaus (tests/data/library/), on 2 cores.\n\n"
        "| what | seconds | target |\n|---|---|---|\n"
        f"| full rebuild of 3 notices ({chunks} chunks, every text embedded, model loaded) | {full:.1f} | ≤ 30 |\n"
        f"| `python -m bot add-notice` of the third (new process: model load, parse, only its passages embedded) | {add:.1f} | ≤ 15 |\n"
        f"| make serve's 2 workers answer from it, after the command returned | {picked:.1f} | ≤ 10 |\n"
    )
    write_section("library", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
