"""gunicorn hooks for ``make serve`` (``--config python:bot.wsgi_hooks``).

A worker is forked from a master that has loaded the model and the index (``--preload``). When
it exits, the interpreter's normal shutdown runs the C++ destructors of libraries whose threads
live in the master, not in the fork: seen here as ``terminate called after throwing an instance
of 'std::system_error'`` (the worker dies of SIGABRT) or as a worker hung on a futex for good,
which a restart then has to kill. A worker has nothing left to save when gunicorn is done with
it, so it leaves with its exit status at once, its output and its conversation log flushed.
"""

from __future__ import annotations

import os
import sys


def worker_exit(server, worker) -> None:
    """Called in the worker, in gunicorn's ``finally``, with the worker's ``sys.exit`` in flight."""
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) else 0
    try:  # the last turns of the conversation log first (a queue its thread writes)
        from bot.convlog import flush_all

        flush_all()
    except Exception:  # noqa: BLE001 — leaving anyway
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 1)
