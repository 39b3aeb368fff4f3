"""Where each conversation's state lives: Rasa's tracker-store convention, three real stores.

``endpoints.yml``'s ``tracker_store:`` picks one with Rasa's own keys:

- none (or ``type: InMemoryTrackerStore``): in this process, for tests and ``make run``;
- ``type: SQL``: any SQLAlchemy database (``url: sqlite:///var/trackers.db``, or Rasa's
  ``dialect``/``url`` (host)/``port``/``db``/``username``/``password``), shared by every worker;
- ``type: redis``: ``url`` (host), ``port``, ``db``, ``password``, ``key_prefix``,
  ``record_exp`` (seconds), for several machines behind a load balancer.

``${VAR}`` in a value is read from the environment, as Rasa does; ``REDIS_URL`` alone selects
Redis. Every store applies the same bounds: a conversation unseen for ``ttl`` seconds is gone,
at most ``max_senders`` are kept (the least recently seen go first), and one conversation keeps
its slots and its last :data:`MAX_EVENTS` events, with only the metadata fields the bot reads.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot import constants as C

MAX_EVENTS = 24
# The metadata fields the bot reads (the page's notice, the page itself), and their bound.
KEPT_METADATA = ("doc", "page")
MAX_METADATA_CHARS = 200
MAX_TEXT_CHARS = 500
_ENV_RE = re.compile(r"\$\{([^}]+)\}")


log = logging.getLogger(__name__)

@dataclass
class Session:
    """One sender's conversation state, as a Rasa tracker holds it."""

    sender: str
    slots: dict = field(default_factory=lambda: {s: None for s in C.SLOTS})
    events: list = field(default_factory=list)
    last_seen: float = field(default_factory=time.time)

    def add_events(self, events: list[dict]) -> None:
        """Append events, keeping only the last :data:`MAX_EVENTS` and bounded texts."""
        for event in events:
            event = dict(event)
            if "text" in event and isinstance(event["text"], str):
                event["text"] = event["text"][:MAX_TEXT_CHARS]
            if "metadata" in event:
                event["metadata"] = trim_metadata(event["metadata"])
            self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def to_json(self) -> str:
        return json.dumps({"sender": self.sender, "slots": self.slots, "events": self.events,
                           "last_seen": self.last_seen}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Session":
        data = json.loads(raw)
        slots = {s: None for s in C.SLOTS}
        slots.update({k: v for k, v in (data.get("slots") or {}).items() if k in slots})
        return cls(data["sender"], slots, list(data.get("events") or [])[-MAX_EVENTS:], float(data["last_seen"]))


def trim_metadata(metadata) -> dict:
    """Only the fields the bot reads, as short strings: a client's 15 KB of metadata is not kept."""
    if not isinstance(metadata, dict):
        return {}
    return {k: str(metadata[k])[:MAX_METADATA_CHARS] for k in KEPT_METADATA if metadata.get(k) is not None}


class TrackerStore(abc.ABC):
    """Load and save :class:`Session` objects by sender.

    :param ttl: seconds a conversation is kept after its last message.
    :param max_senders: most conversations kept at once.
    """

    def __init__(self, ttl: float = 1800, max_senders: int = 10000) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        if max_senders < 1:
            raise ValueError(f"max_senders must be >= 1, got {max_senders}")
        self.ttl = float(ttl)
        self.max_senders = int(max_senders)

    def retrieve(self, sender: str) -> Session:
        """The sender's live conversation, or a new one."""
        session = self._get(sender)
        now = time.time()
        if session is None or now - session.last_seen > self.ttl:
            session = Session(sender)
        session.last_seen = now
        return session

    @abc.abstractmethod
    def _get(self, sender: str) -> Session | None: ...

    @abc.abstractmethod
    def save(self, session: Session) -> None:
        """Store ``session`` (and drop what is past the bounds)."""

    @abc.abstractmethod
    def delete(self, sender: str) -> None: ...

    @abc.abstractmethod
    def count(self) -> int:
        """Conversations held now (expired ones may still count until they are dropped)."""

    def describe(self) -> str:
        return type(self).__name__


class FailSafeSessions:
    """A store's sessions for the dialogue, where the store failing never fails a turn.

    A database that is down, full or read-only, or a Redis that does not answer, costs the
    conversation its context for that turn (it is answered as a first question) and is logged
    and counted (``failures``, shown by /healthz), never a 500.

    :param store: the :class:`TrackerStore` it guards.
    """

    def __init__(self, store: TrackerStore) -> None:
        self.store = store
        self.failures = 0
        self.last_error: str | None = None

    def retrieve(self, sender: str) -> Session:
        try:
            return self.store.retrieve(sender)
        except Exception as exc:  # noqa: BLE001 (any driver's error: the turn goes on)
            self._failed("read", exc)
            return Session(sender)

    def save(self, session: Session) -> None:
        try:
            self.store.save(session)
        except Exception as exc:  # noqa: BLE001
            self._failed("write", exc)

    def delete(self, sender: str) -> None:
        try:
            self.store.delete(sender)
        except Exception as exc:  # noqa: BLE001
            self._failed("delete", exc)

    def count(self) -> int:
        try:
            return self.store.count()
        except Exception as exc:  # noqa: BLE001
            self._failed("count", exc)
            return 0

    def _failed(self, what: str, exc: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.failures == 1 or self.failures % 100 == 0:  # the first with its traceback, then a count
            log.error("conversation store %s failed (%d so far; the turn is answered without its context)",
                      what, self.failures, exc_info=self.failures == 1)


class InMemoryTrackerStore(TrackerStore):
    """In this process: lost on restart, not shared between workers."""

    def __init__(self, ttl: float = 1800, max_senders: int = 10000) -> None:
        super().__init__(ttl, max_senders)
        # sender → (last seen, the session as JSON): stored as the other stores store it, so a
        # caller's later changes to a session never leak in; expiry reads the time, not the JSON.
        self._sessions: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, sender: str) -> Session | None:
        with self._lock:
            entry = self._sessions.get(sender)
        return Session.from_json(entry[1]) if entry else None

    def save(self, session: Session) -> None:
        now = time.time()
        with self._lock:
            self._sessions.pop(session.sender, None)
            self._sessions[session.sender] = (session.last_seen, session.to_json())
            while self._sessions:
                last_seen, _ = next(iter(self._sessions.values()))
                if now - last_seen <= self.ttl and len(self._sessions) <= self.max_senders:
                    break
                self._sessions.popitem(last=False)

    def delete(self, sender: str) -> None:
        with self._lock:
            self._sessions.pop(sender, None)

    def count(self) -> int:
        return len(self._sessions)


class SQLTrackerStore(TrackerStore):
    """One row per conversation in any SQLAlchemy database (SQLite under ``var/`` by default).

    :param url: a SQLAlchemy URL (``sqlite:///var/trackers.db``, ``postgresql://…``).
    """

    def __init__(self, url: str, ttl: float = 1800, max_senders: int = 10000) -> None:
        super().__init__(ttl, max_senders)
        import sqlalchemy as sa

        self.url = url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._sa = sa
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            # WAL: both gunicorn workers read and write the file at once; wait for a lock rather
            # than fail.
            @sa.event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(connection, _record):
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.close()

        metadata = sa.MetaData()
        self.table = sa.Table(
            "trackers", metadata,
            sa.Column("sender_id", sa.String(255), primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("last_seen", sa.Float, nullable=False, index=True),
        )
        metadata.create_all(self.engine)
        self._saves = 0

    def _get(self, sender: str) -> Session | None:
        with self.engine.connect() as conn:
            raw = conn.execute(self._sa.select(self.table.c.state).where(self.table.c.sender_id == sender)).scalar()
        return Session.from_json(raw) if raw else None

    def save(self, session: Session) -> None:
        sa, t = self._sa, self.table
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(t).where(t.c.sender_id == session.sender)
                                   .values(state=session.to_json(), last_seen=session.last_seen)).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(t).values(sender_id=session.sender, state=session.to_json(),
                                                         last_seen=session.last_seen))
                except sa.exc.IntegrityError:  # the other worker inserted it first
                    conn.execute(sa.update(t).where(t.c.sender_id == session.sender)
                                 .values(state=session.to_json(), last_seen=session.last_seen))
        self._saves += 1
        if self._saves % 50 == 1:
            self.prune()

    def prune(self) -> None:
        """Drop expired conversations and the least recently seen beyond ``max_senders``."""
        sa, t = self._sa, self.table
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t).where(t.c.last_seen < time.time() - self.ttl))
            excess = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() - self.max_senders
            if excess > 0:
                oldest = sa.select(t.c.sender_id).order_by(t.c.last_seen).limit(excess).scalar_subquery()
                conn.execute(sa.delete(t).where(t.c.sender_id.in_(oldest)))

    def delete(self, sender: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._sa.delete(self.table).where(self.table.c.sender_id == sender))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._sa.select(self._sa.func.count()).select_from(self.table)).scalar())

    def describe(self) -> str:
        return f"SQL ({self.engine.dialect.name})"


class RedisTrackerStore(TrackerStore):
    """One key per conversation in Redis, expiring after ``ttl``; a sorted set of senders by last
    message bounds how many are kept.

    :param url: ``redis://[:password@]host:port/db``.
    :param key_prefix: prefix of every key this store writes.
    """

    def __init__(self, url: str, ttl: float = 1800, max_senders: int = 10000, key_prefix: str = "zhenggai:") -> None:
        super().__init__(ttl, max_senders)
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = key_prefix
        self._index = f"{key_prefix}senders"

    def _key(self, sender: str) -> str:
        return f"{self.prefix}tracker:{sender}"

    def _get(self, sender: str) -> Session | None:
        raw = self.client.get(self._key(sender))
        return Session.from_json(raw) if raw else None

    def save(self, session: Session) -> None:
        pipe = self.client.pipeline()
        pipe.set(self._key(session.sender), session.to_json(), ex=max(1, int(round(self.ttl))))
        pipe.zadd(self._index, {session.sender: session.last_seen})
        pipe.zremrangebyscore(self._index, "-inf", time.time() - self.ttl)
        pipe.zcard(self._index)
        *_, size = pipe.execute()
        if size > self.max_senders:
            oldest = self.client.zrange(self._index, 0, size - self.max_senders - 1)
            if oldest:
                pipe = self.client.pipeline()
                pipe.delete(*[self._key(s.decode()) for s in oldest])
                pipe.zrem(self._index, *oldest)
                pipe.execute()

    def delete(self, sender: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self._key(sender))
        pipe.zrem(self._index, sender)
        pipe.execute()

    def count(self) -> int:
        return int(self.client.zcard(self._index))

    def describe(self) -> str:
        return "redis"


def _expand_env(value):
    if isinstance(value, str):
        return _ENV_RE.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def read_endpoints(path: str | Path | None) -> dict:
    """An ``endpoints.yml``'s ``tracker_store`` section (``${VAR}`` expanded), or ``{}``."""
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"无法读取 {path} / cannot read endpoints file {path}: {exc}") from exc
    return _expand_env(data.get("tracker_store") or {})


def _sql_url(config: dict, base: Path) -> str:
    url = str(config.get("url") or "")
    if "://" in url:
        return url
    dialect = str(config.get("dialect") or "sqlite")
    db = str(config.get("db") or "var/trackers.db")
    if dialect.startswith("sqlite"):
        path = Path(db)
        return f"sqlite:///{path if path.is_absolute() else base / path}"
    from sqlalchemy.engine import URL

    return URL.create(dialect, username=config.get("username") or None, password=config.get("password") or None,
                      host=url or None, port=int(config["port"]) if config.get("port") else None,
                      database=db).render_as_string(hide_password=False)


def _redis_url(config: dict) -> str:
    url = str(config.get("url") or "localhost")
    if "://" in url:
        return url
    auth = f":{config['password']}@" if config.get("password") else ""
    return f"redis://{auth}{url}:{int(config.get('port') or 6379)}/{int(config.get('db') or 0)}"


def tracker_store(config: dict | None, ttl: float = 1800, max_senders: int = 10000,
                  redis_url: str | None = None, base: Path | None = None) -> TrackerStore:
    """The store an ``endpoints.yml`` ``tracker_store`` section asks for.

    :param config: that section (Rasa's keys); empty means in memory, or Redis at ``redis_url``.
    :param base: the folder a relative SQLite path is under (the project root).
    :raises ValueError: for a type this bot does not know.
    """
    config = dict(config or {})
    kind = str(config.get("type") or ("redis" if redis_url else "memory")).lower()
    base = base or Path(__file__).resolve().parent.parent
    if kind in ("memory", "inmemory", "inmemorytrackerstore"):
        return InMemoryTrackerStore(ttl, max_senders)
    if kind in ("sql", "sqltrackerstore"):
        return SQLTrackerStore(_sql_url(config, base), ttl, max_senders)
    if kind in ("redis", "redistrackerstore"):
        url = _redis_url(config) if config.get("url") or not redis_url else redis_url
        ttl = float(config.get("record_exp") or ttl)
        return RedisTrackerStore(url, ttl, max_senders, key_prefix=str(config.get("key_prefix") or "zhenggai:"))
    raise ValueError(f"tracker_store 类型不支持 / unknown tracker_store type {config.get('type')!r}; "
                     "use SQL, redis or leave it out (in memory)")
