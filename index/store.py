"""The built index on disk: generations, their manifests and checks, one build at a time.

``index/build/`` holds each build in a folder of its own (``gen-<time>-<pid>``), written in full
under a temporary name and renamed into place, with a manifest listing every file and its hash,
and a copy of the sources it was built from (``sources/``: the notices, their metadata and
labelled questions, the synonyms). ``current`` is a symbolic link to the newest generation,
swapped atomically (a reader that resolved it keeps reading one generation), and ``previous``
to the one before it; older ones are removed. Because each generation carries its sources, a
server that finds the sources changed, or the newest build damaged, can keep answering from the
last good generation exactly as it was built, while a new one is built beside it.

Builds take an exclusive lock (``.build.lock``, ``flock``): two servers, or a server and
``python -m bot index``, never build at once, and the second finds the first's build current.
A build checks before its costly part that the folder is writable and has room for it, and its
outcome is kept in ``build-status.json`` for ``/healthz``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from knowledge.store import source_name

log = logging.getLogger(__name__)

INDEX_FILES = ("chunks.faiss", "about.faiss", "sentences.faiss", "examples.faiss", "chunks.json")
SOURCES = "sources"
# A build's leftovers (a temporary folder, a half-written vector file) older than this are from an
# interrupted build, not one running now, and are removed at the next start.
STALE_TEMP_SECONDS = 600
_STATUS_FILE = "build-status.json"
_LOCK_FILE = ".build.lock"


class IndexUnusableError(RuntimeError):
    """The index on disk is missing, stale or damaged (message: "中文 / English")."""


class IndexWriteError(OSError):
    """The index folder cannot take a new build: read-only, full or missing (message: "中文 / English")."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_error(exc: OSError, folder: Path) -> IndexWriteError:
    """``exc`` from writing under ``folder``, said plainly for an operator."""
    if exc.errno == errno.EROFS or exc.errno in (errno.EACCES, errno.EPERM):
        return IndexWriteError(exc.errno, f"索引目录 {folder} 只读或无写入权限，无法重建索引 / "
                                          f"the index folder {folder} is read-only or not writable: {exc.strerror}")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return IndexWriteError(exc.errno, f"索引目录 {folder} 所在磁盘已满，无法重建索引 / "
                                          f"no space left for a new index in {folder}")
    return IndexWriteError(exc.errno, f"无法写入索引目录 {folder}：{exc.strerror} / cannot write the index "
                                      f"in {folder}: {exc}")


class IndexStorage:
    """The generations of the index in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def current(self) -> Path:
        return self.folder / "current"

    @property
    def previous(self) -> Path:
        return self.folder / "previous"

    # ---- reading -----------------------------------------------------------------------------

    def read_manifest(self, generation: Path, expected: dict) -> dict:
        """The manifest of ``generation`` if it has ``expected``'s values and every file it lists
        (the index files and the copied sources) is intact.

        :raises IndexUnusableError: otherwise.
        """
        path = generation / "manifest.json"
        if not path.exists():
            raise IndexUnusableError(f"索引不存在 / no index at {generation}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexUnusableError(f"索引清单已损坏 / manifest unreadable: {exc}") from exc
        if not isinstance(manifest, dict):
            raise IndexUnusableError("索引清单已损坏 / manifest is not an object")
        for key, value in expected.items():
            if manifest.get(key) != value:
                raise IndexUnusableError(f"索引已过期（{key} 不一致） / index is stale: {key} differs")
        files = manifest.get("files") or {}
        wanted = set(INDEX_FILES) | {f"{SOURCES}/{name}" for name in manifest.get("sources") or {}}
        if set(files) != wanted:
            raise IndexUnusableError("索引清单不完整 / manifest does not list the index files")
        for name, digest in files.items():
            file = generation / name
            try:
                intact = file.is_file() and sha256(file) == digest
            except OSError:
                intact = False
            if not intact:
                raise IndexUnusableError(f"索引文件 {name} 已损坏 / index file {name} is damaged")
        return manifest

    def generations(self) -> list[Path]:
        """``current`` then ``previous``, resolved (each once), as far as they exist."""
        out = []
        for link in (self.current, self.previous):
            try:
                target = link.resolve(strict=True)
            except OSError:
                continue
            if target.is_dir() and target not in out:
                out.append(target)
        return out

    def identity(self) -> tuple | None:
        """What changes when a new generation is swapped in (cheap: no hashing)."""
        try:
            stat = (self.current / "manifest.json").stat()
        except OSError:
            return None
        return (os.path.realpath(self.current), stat.st_ino, stat.st_mtime_ns)

    # ---- writing -----------------------------------------------------------------------------

    def check_writable(self, need_bytes: int = 0) -> None:
        """Fail fast, before a build's costly part, when the folder cannot take it.

        :param need_bytes: the room the build needs (a new generation is about the current one's size).
        :raises IndexWriteError: read-only, not writable, or not enough free space.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".probe-"):
                pass
            free = shutil.disk_usage(self.folder).free
        except OSError as exc:
            raise write_error(exc, self.folder) from exc
        if need_bytes and free < need_bytes:
            raise IndexWriteError(
                errno.ENOSPC,
                f"索引目录 {self.folder} 所在磁盘空间不足（需要约 {need_bytes / 1e6:.1f} MB，剩余 {free / 1e6:.1f} MB）"
                f"，无法重建索引 / not enough disk space for a new index in {self.folder}: "
                f"about {need_bytes / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free")

    def size_of_current(self) -> int:
        try:
            root = self.current.resolve(strict=True)
            return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        except OSError:
            return 0

    def write(self, write: Callable[[Path], None], sources: list[Path], fields: dict) -> dict:
        """Write a new generation and make it ``current`` (the old one becomes ``previous``).

        :param write: writes the :data:`INDEX_FILES` into the folder it is given.
        :param sources: the files the index was built from, copied into ``sources/``.
        :param fields: the manifest's fields; ``files`` and ``built_at`` are added.
        :returns: the manifest written.
        :raises IndexWriteError: when the folder cannot take it (nothing half-written stays).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".current-", dir=self.folder))
        except OSError as exc:
            raise write_error(exc, self.folder) from exc
        try:
            write(tmp)
            (tmp / SOURCES).mkdir()
            for source in sources:
                target = tmp / SOURCES / source_name(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            manifest = dict(fields)
            names = list(INDEX_FILES) + [f"{SOURCES}/{source_name(s)}" for s in sources]
            manifest.update(built_at=_now(), files={n: sha256(tmp / n) for n in names})
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
            os.chmod(tmp, 0o755)
            generation = self.folder / name
            tmp.rename(generation)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(exc, self.folder) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._swap_in(generation)
        return manifest

    def _swap_in(self, generation: Path) -> None:
        old = self.generations()[0] if self.generations() else None
        if self.current.is_dir() and not self.current.is_symlink():
            # A plain folder (copied with its links followed, or an older layout): it becomes a
            # generation of its own so that the link can take its place.
            moved = self.folder / f"gen-moved-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
            self.current.rename(moved)
            old = moved
        self._link("current", generation)
        if old is not None and old != generation:
            if self.previous.is_dir() and not self.previous.is_symlink():
                self.previous.rename(self.folder / f"gen-moved-prev-{os.getpid()}")
            self._link("previous", old)
        keep = {p.resolve() for p in (self.current, self.previous) if p.exists()}
        for stale in self.folder.glob("gen-*"):
            if stale.resolve() not in keep:
                shutil.rmtree(stale, ignore_errors=True)

    def _link(self, name: str, target: Path) -> None:
        tmp = self.folder / f".{name}-link-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target.name)
        os.replace(tmp, self.folder / name)

    # ---- one build at a time -------------------------------------------------------------------

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """Hold the exclusive build lock (waiting for another build to finish)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / _LOCK_FILE, "a+")
        except OSError as exc:
            raise write_error(exc, self.folder) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def build_running(self) -> bool:
        """Whether some process holds the build lock now."""
        try:
            with open(self.folder / _LOCK_FILE, "r") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(handle, fcntl.LOCK_UN)
                return False
        except OSError:
            return False

    def record(self, state: str, error: str | None = None) -> None:
        """Keep a build's outcome (``building``, ``built``, ``failed``) for /healthz; best effort."""
        body = {"state": state, "at": _now(), "pid": os.getpid()}
        if error:
            body["error"] = error
        try:
            tmp = self.folder / f".{_STATUS_FILE}.{os.getpid()}"
            tmp.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.folder / _STATUS_FILE)
        except OSError as exc:  # read-only or full: the log has it
            log.warning("could not record the build status in %s: %s", self.folder, exc)

    def last_build(self) -> dict:
        """The last recorded build outcome, or ``{}``."""
        try:
            body = json.loads((self.folder / _STATUS_FILE).read_text(encoding="utf-8"))
            return body if isinstance(body, dict) else {}
        except (OSError, ValueError):
            return {}

    def clean_stale_temp(self) -> list[str]:
        """Remove what an interrupted build left (``.current-*``, ``*.tmp.npy``, stray links and
        generations that are neither ``current`` nor ``previous``).

        :returns: the names removed.
        """
        removed = []
        if not self.folder.is_dir():
            return removed
        now = time.time()
        keep = {p.resolve() for p in (self.current, self.previous) if p.exists()}
        candidates = (list(self.folder.glob(".current-*")) + list(self.folder.glob("*.tmp.npy"))
                      + [p for p in self.folder.glob("gen-*") if p.resolve() not in keep])
        for path in candidates:
            try:
                if now - path.lstat().st_mtime < STALE_TEMP_SECONDS:
                    continue
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                removed.append(path.name)
            except OSError as exc:  # read-only or vanished: the index is still usable
                log.warning("could not remove %s: %s", path, exc)
        if removed:
            log.warning("removed what an interrupted build left: %s", ", ".join(removed))
        return removed
