"""The conversation log: one row per turn, in SQLite (a file under ``var/``, WAL) or PostgreSQL
(``DATABASE_URL``), for staff to see what citizens asked, what went unanswered and what got a 👎.

Only masked text is ever handed to it (:mod:`bot.privacy`). Writing never slows or breaks an
answer: rows go through a queue to one writer thread, and a database that is down costs the row,
not the answer; failures are counted for ``/healthz``. The schema is Alembic's
(``bot/migrations``, ``python -m bot db upgrade``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import sqlalchemy as sa

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_URL = f"sqlite:///{REPO / 'var' / 'conversations-log.sqlite3'}"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
RATINGS = ("up", "down")
REASONS = ("没回答我的问题", "内容看不懂", "其他")
MAX_COMMENT_CHARS = 200
PURGE_EVERY = 24 * 3600.0

# Every log of this process, flushed when a gunicorn worker leaves (bot/wsgi_hooks.py).
_OPEN: list["ConversationLog"] = []


def flush_all(timeout: float = 5.0) -> None:
    """Write what every log of this process still holds (a worker's last turns)."""
    for conversation_log in list(_OPEN):
        conversation_log.flush(timeout)


metadata = sa.MetaData()
turns = sa.Table(
    "turns", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("turn_id", sa.String(32), nullable=False, unique=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("sender", sa.String(64), nullable=False, index=True),
    sa.Column("doc", sa.String(100)),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("intent", sa.String(40)),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("kind", sa.String(20)),
    sa.Column("reason", sa.Text),
    sa.Column("cited_doc", sa.String(100)),
    sa.Column("cited_anchors", sa.String(200)),
    sa.Column("top_score", sa.Float),
    sa.Column("latency_ms", sa.Float),
    sa.Column("page", sa.String(300)),
    sa.Column("rating", sa.String(4)),
    sa.Column("feedback_reason", sa.String(20)),
    sa.Column("feedback_comment", sa.Text),
    sa.Column("feedback_at", sa.DateTime(timezone=True)),
    sa.Column("p_out_of_scope", sa.Float),
)


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite in WAL mode (both gunicorn workers write) with a busy wait."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
    return engine


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine_for(url)
    command.upgrade(config, "head")


def page_path(page: object) -> str | None:
    """The path of the page a question came from (``metadata.page``): no query, no fragment, no host."""
    if not isinstance(page, str) or not page:
        return None
    try:
        return (urlsplit(page).path or "/")[:300]
    except ValueError:
        return None


@dataclass
class Turn:
    """What the log keeps of one turn (the question already masked)."""

    sender: str
    question: str
    answered: bool
    doc: str | None = None
    intent: str | None = None
    kind: str | None = None
    reason: str | None = None
    cited_doc: str | None = None
    cited_anchors: list[str] = field(default_factory=list)
    top_score: float | None = None
    latency_ms: float | None = None
    page: str | None = None
    p_out_of_scope: float | None = None
    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))

    def row(self) -> dict:
        return {"turn_id": self.turn_id, "at": self.at, "sender": self.sender[:64], "doc": self.doc,
                "question": self.question, "intent": self.intent, "answered": self.answered, "kind": self.kind,
                "reason": self.reason, "cited_doc": self.cited_doc,
                "cited_anchors": ",".join(self.cited_anchors)[:200] or None,
                "top_score": self.top_score, "latency_ms": self.latency_ms, "page": self.page,
                "p_out_of_scope": self.p_out_of_scope}


class ConversationLog:
    """The log, written by one background thread.

    :param url: a SQLAlchemy URL (default: SQLite under ``var/``).
    :param retention_days: rows older than this are purged, once a day and by :meth:`purge`.
    """

    def __init__(self, url: str | None = None, retention_days: float = 180) -> None:
        if retention_days <= 0:
            raise ValueError(f"retention_days must be > 0, got {retention_days}")
        self.url = url or DEFAULT_URL
        self.retention_days = float(retention_days)
        self.engine = engine_for(self.url)
        self.written = 0
        self.failed = 0
        self.last_error: str | None = None
        self._last_purge = 0.0
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=10000)
        _OPEN.append(self)

    def _writer(self) -> queue.Queue:
        """This process's queue and writer thread: started on first use, and again in a process
        forked after it (a gunicorn worker of a preloading master gets no thread of the master's,
        and no connection of its pool)."""
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    if self._pid is not None:
                        self.engine.dispose(close=False)
                        self._queue = queue.Queue(maxsize=10000)
                    threading.Thread(target=self._run, args=(self._queue,), name="conversation-log", daemon=True).start()
                    self._pid = pid
        return self._queue

    # ---- writing (never in the answer's way) -----------------------------------------------

    def record(self, turn: Turn) -> str:
        """Queue ``turn``; returns its ``turn_id``. A full queue drops the row (counted)."""
        self._put(("turn", turn))
        return turn.turn_id

    def feedback(self, sender: str, turn_id: str | None, rating: str, reason: str | None = None,
                 comment: str | None = None) -> None:
        """Queue a 👍/👎 for ``turn_id`` (or the sender's last turn), already checked and masked."""
        self._put(("feedback", (sender, turn_id, rating, reason, comment, _dt.datetime.now(_dt.timezone.utc))))

    def _put(self, item) -> None:
        try:
            self._writer().put_nowait(item)
        except queue.Full:
            self.failed += 1
            self.last_error = "queue full"

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued row is written (or failed); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _run(self, jobs: queue.Queue) -> None:
        while True:
            kind, payload = jobs.get()
            try:
                if kind == "turn":
                    with self.engine.begin() as conn:
                        conn.execute(turns.insert().values(**payload.row()))
                    self.written += 1
                else:
                    self._write_feedback(*payload)
                if time.monotonic() - self._last_purge > PURGE_EVERY:
                    self._last_purge = time.monotonic()
                    self.purge()
            except Exception as exc:  # the database is down or refuses: the answer is already out
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("conversation log: could not write a %s: %s", kind, self.last_error)
            finally:
                jobs.task_done()

    def _write_feedback(self, sender, turn_id, rating, reason, comment, at) -> None:
        with self.engine.begin() as conn:
            if not turn_id:
                turn_id = conn.execute(sa.select(turns.c.turn_id).where(turns.c.sender == sender)
                                       .order_by(turns.c.id.desc()).limit(1)).scalar()
            if not turn_id:
                raise LookupError(f"no turn of sender {sender!r} to rate")
            done = conn.execute(turns.update().where(turns.c.turn_id == turn_id, turns.c.sender == sender)
                                .values(rating=rating, feedback_reason=reason, feedback_comment=comment,
                                        feedback_at=at))
            if done.rowcount == 0:
                raise LookupError(f"no turn {turn_id!r} of sender {sender!r}")

    # ---- staff ---------------------------------------------------------------------------------

    def purge(self, days: float | None = None) -> int:
        """Delete the rows older than the retention period; returns how many."""
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=days or self.retention_days)
        with self.engine.begin() as conn:
            return conn.execute(turns.delete().where(turns.c.at < cutoff)).rowcount or 0

    def rows(self, since: _dt.datetime | None = None) -> Iterator[dict]:
        query = sa.select(turns).order_by(turns.c.id)
        if since is not None:
            query = query.where(turns.c.at >= since)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield dict(row)

    def export(self, since: _dt.datetime | None = None, fmt: str = "csv") -> Iterator[str]:
        """The rows as CSV (with a header) or JSON lines, for staff."""
        columns = [c.name for c in turns.columns if c.name != "id"]
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(columns)
            yield buffer.getvalue()
        for row in self.rows(since):
            values = {k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in row.items() if k != "id"}
            if fmt == "csv":
                buffer = io.StringIO()
                csv.writer(buffer).writerow([values[c] for c in columns])
                yield buffer.getvalue()
            else:
                yield json.dumps(values, ensure_ascii=False) + "\n"

    def status(self) -> dict:
        """For ``/healthz``: rows written, failed, waiting; the last error."""
        return {"written": self.written, "failed": self.failed, "pending": self._queue.unfinished_tasks,
                "last_error": self.last_error}
