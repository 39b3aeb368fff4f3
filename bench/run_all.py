"""Run every benchmark in turn (``make bench``); each writes its own section of RESULTS.md."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("bench.bench_embedding", "bench.bench_quality", "bench.bench_labelled", "bench.bench_latency",
           "bench.bench_server", "bench.bench_context", "bench.bench_long", "bench.bench_fuzz", "bench.bench_rebuild",
           "bench.bench_library", "bench.bench_log", "bench.bench_label")


def main() -> None:
    only = sys.argv[1:]
    for name in BENCHES:
        if only and name.split(".")[-1] not in only:
            continue
        print(f"== {name}", flush=True)
        sys.argv = [name]  # each benchmark parses its own (empty) command line
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
