"""The bot a server answers with, kept current without taking the service down.

A server never closes its port for an index. At start it loads the last good index on disk
(:meth:`index.search.Retriever.load_last_good`): the current one, or, when the notices changed
or the newest build is damaged, the newest intact build with the notices it was built from. When
that one is stale or there is none, ``python -m bot index --if-needed`` builds a new one in a
process of its own, at low priority, while the server answers from the old index, or answers
503 with a Chinese message when it has none. Builds take a lock, so two servers never build at
once.

Each process (a gunicorn worker, the development server) looks at the index on disk at most
every ``reload_every`` seconds when a request comes; when a new build is there (a rebuild the
server started, or staff running ``python -m bot index``), it loads it beside the one it answers
with, in a thread, and swaps it in. Conversations carry on: the new bot shares the model and the
conversation store.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from index.store import IndexUnusableError, IndexWriteError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
RELOAD_EVERY = 2.0
# How long a builder may take to load its model and take the build lock.
BUILDER_START_SECONDS = 120
# What the builder process must know to build the same index (the rest comes from the environment).
_BUILDER_KEYS = ("EMBEDDING_MODEL", "LIBRARY_DIR", "INDEX_DIR")


class LiveBot:
    """The bot answering now, and the next one once its index is built.

    :param make_bot: builds a bot (not loaded) from the settings: :func:`bot.runtime.build_bot`.
    :param settings: the settings ``make_bot`` and the builder process get.
    :param reload_every: seconds between looks at the index on disk.
    :param build: start a builder process when the index is stale or missing.
    """

    def __init__(self, make_bot, settings: dict, reload_every: float = RELOAD_EVERY, build: bool = True) -> None:
        if reload_every < 0:
            raise ValueError(f"reload_every must be >= 0, got {reload_every}")
        self.settings = dict(settings)
        self.reload_every = reload_every
        self.build = build
        self.started = time.monotonic()
        self.error: str | None = None
        self.build_error: str | None = None
        self._builder_spawned: tuple[float, str] | None = None
        self._next = make_bot(self.settings)
        self._bot = None
        self._seen = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._loading = False  # a reload or a relabel is under way in a thread
        self._relabel_lock = threading.Lock()
        self._labels_seen = None
        self._fixed = False
        self.loaded = threading.Event()  # the first load has been tried (answering or not)

    @classmethod
    def serving(cls, bot) -> "LiveBot":
        """A live bot that answers with ``bot`` (loaded) and never reloads (the tests' app)."""
        live = cls(lambda _settings: bot, {}, reload_every=0.0, build=False)
        live._bot, live._fixed = bot, True
        live.loaded.set()
        return live

    # ---- what the server reads ---------------------------------------------------------------

    @property
    def bot(self):
        """The loaded bot answering now, or None (none yet: the index is being built)."""
        return self._bot

    @property
    def storage(self):
        """The index on disk (:class:`index.store.IndexStorage`) of the bot answering or to come."""
        bot = self._bot or self._next
        return bot.retriever.storage if bot is not None else None

    def status(self) -> dict:
        """For /healthz: ``state`` (``ok``, ``stale``: answering from an index of notices that
        have changed since, ``building``, ``starting``, ``unavailable``), and the index's details."""
        bot = self._bot
        storage = self.storage
        building = storage.build_running() if storage else False
        last = storage.last_build() if storage else {}
        if bot is not None:
            state = "stale" if bot.retriever.stale else "ok"
        elif building or self._loading or self._builder_pending(last):
            state = "building"
        elif not self.loaded.is_set():
            state = "starting"
        else:
            state = "unavailable"
        out = {"state": state, "building": building}
        if bot is not None:
            out["built_at"] = bot.retriever.manifest.get("built_at")
        if last:
            out["last_build"] = last
        if self.error and bot is None:
            out["error"] = self.error
        if self.build_error:
            out["build_error"] = self.build_error
        return out

    def _builder_pending(self, last: dict) -> bool:
        """A builder this server started that has not taken the lock yet (loading its model), or
        whose build is done and about to be loaded, and that has not failed."""
        if self._builder_spawned is None:
            return False
        spawned_at, wall = self._builder_spawned
        if last.get("state") == "failed" and str(last.get("at", "")) >= wall:
            return False
        return time.monotonic() - spawned_at < BUILDER_START_SECONDS

    # ---- loading -----------------------------------------------------------------------------

    def start(self, raise_errors: bool = True) -> None:
        """Load the model and the last good index; start a build when it is stale or missing.

        :param raise_errors: raise when the model cannot be loaded (a production server must not
            run without it); else keep the reason for /healthz.
        :raises Exception: see ``raise_errors``.
        """
        try:
            candidate = self._next
            try:
                candidate.embedder.warm_up()
            except Exception as exc:  # the reason goes to /healthz and the log, never to a citizen
                log.exception("the model could not be loaded")
                self.error = str(exc)
                if raise_errors:
                    raise
                return
            seen = candidate.retriever.storage.identity()
            if self._load(candidate):
                self._seen = seen
            if self.build and (self._bot is None or self._bot.retriever.stale):
                self._start_builder()
        finally:
            self.loaded.set()

    def refresh(self) -> None:
        """Cheap, per request: at most every ``reload_every`` s, look whether a new index is on
        disk, and load it in a thread; else whether staff labelled questions since, and answer
        with them (the request goes on with the bot it has)."""
        if self._fixed:
            return
        now = time.monotonic()
        if now - self._checked < self.reload_every or not self.loaded.is_set():
            return
        self._checked = now
        identity = self.storage.identity() if self.storage else None
        if identity is not None and identity != self._seen:
            self._in_background(self._reload, identity)
            return
        bot = self._bot
        if bot is not None and bot.retriever.labels_on_disk() != self._labels_seen:
            self._in_background(self._relabel, bot)

    def relabel_now(self) -> dict | None:
        """Answer with the labelled questions on disk at once, in this process (the worker that
        took a staff label); the other processes follow within ``reload_every`` s of a request.
        :returns: what :meth:`index.search.Retriever.relabel` says, or None (no bot, or the
        tests' fixed bot, which never changes)."""
        bot = self._bot
        if self._fixed or bot is None:
            return None
        return self._relabel(bot)

    def _in_background(self, work, arg) -> None:
        with self._lock:
            if self._loading:
                return
            self._loading = True

        def run() -> None:
            try:
                work(arg)
            finally:
                self._loading = False

        threading.Thread(target=run, name=work.__name__.strip("_"), daemon=True).start()

    def _relabel(self, bot) -> dict | None:
        done = None
        with self._relabel_lock:
            # Seen before it is read: a label written meanwhile is read at the next look.
            seen = bot.retriever.labels_on_disk()
            try:
                done = bot.retriever.relabel()
                log.info("now answering with %d labelled questions (%d new)", done["examples"], done["embedded"])
            except Exception:  # a label that cannot be read never takes the answering bot with it
                log.exception("reading the labelled questions failed; answering with the ones before")
            if bot is self._bot:
                self._labels_seen = seen
        return done

    def _reload(self, identity) -> None:
        try:
            base = self._bot or self._next
            if self._load(base.renewed()):
                log.info("now answering from the index built at %s", self._bot.retriever.manifest.get("built_at"))
        except Exception:  # never let a reload take the answering bot with it
            log.exception("loading the new index failed; answering from the one before")
        finally:
            self._seen = identity

    def _load(self, candidate) -> bool:
        """Load ``candidate`` from the last good index and swap it in, unless it is staler than
        the bot answering now. :returns: whether it answers now."""
        try:
            candidate.retriever.load_last_good()
            candidate.answerer.warm_up()
            candidate.dialogue.warm_up()
        except IndexUnusableError as exc:
            self.error = str(exc)
            log.warning("no usable index yet: %s", exc)
            return False
        current = self._bot
        if current is not None and candidate.retriever.stale and not current.retriever.stale:
            return False
        self._bot = candidate
        # An index of the notices on disk holds their labels; one built before the last labels
        # (stale) is given them at the next look.
        self._labels_seen = None if candidate.retriever.stale else candidate.retriever.labels_on_disk()
        self.error = None
        return True

    def request_build(self) -> bool:
        """The notices' files changed (staff labelled a question): build a new index in the
        background; every process of the site loads it when it is done. :returns: whether a
        build was started (never for a bot that does not reload, as the tests' app's)."""
        if self._fixed or not self.build:
            return False
        self._start_builder()
        return self._builder_spawned is not None

    def _start_builder(self) -> None:
        """``python -m bot index --if-needed`` in a process of its own, at low priority; not
        when the index folder cannot take a build (read-only, full): that is said in
        ``build_error``, and the last good index goes on answering."""
        storage = self.storage
        try:
            storage.check_writable(int(storage.size_of_current() * 1.2))
        except IndexWriteError as exc:
            self.build_error = str(exc)
            log.error("cannot rebuild the index: %s", exc)
            return
        env = dict(os.environ)
        for key in _BUILDER_KEYS:
            if self.settings.get(key):
                env[key] = str(self.settings[key])
        command = [sys.executable, "-m", "bot", "index", "--if-needed", "--quiet"]
        if shutil.which("nice"):
            command = ["nice", "-n", "10", *command]
        # Detached (setsid -f forks and exits at once): the builder is not this process's child,
        # so gunicorn's master, which reaps every child it has and reads some exit codes as
        # "halt", never sees it.
        if shutil.which("setsid"):
            command = ["setsid", "-f", *command]
        log.warning("the index is %s: building a new one in the background",
                    "stale" if self._bot is not None else "missing or damaged")
        try:
            subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            wall = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            self._builder_spawned = (time.monotonic(), wall)
        except OSError as exc:
            self.error = f"无法启动索引重建 / could not start the index build: {exc}"
            log.error("%s", self.error)
