"""What the staff console keeps: staff accounts, and the labels staff give citizens' questions.

Both live in the conversation log's database (``bot/migrations``). A label says which passage of a
notice answers a question, or that the notice does not (``-``); it is written into that notice's
``questions.tsv``, the labelled questions the index learns from, so the next index answers with it.
Every label records who made it and when, and can be undone; a label that contradicts an earlier
one is refused until staff say it replaces it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import fcntl
import os
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from bot.convlog import engine_for, metadata

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")
MIN_PASSWORD_CHARS = 10
MAX_QUESTION_CHARS = 500
NOT_COVERED = "-"
LABEL_KIND = "staff"

staff = sa.Table(
    "staff", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
labels = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("doc", sa.String(100), nullable=False, index=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("anchor", sa.String(100), nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("undone_by", sa.String(64)),
    sa.Column("undone_at", sa.DateTime(timezone=True)),
)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def question_key(text: str) -> str:
    """What two questions share when they are the same text (width, case, spaces and the final
    punctuation aside)."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split()).rstrip("？?。.!！")


def same_question(a: str, b: str) -> bool:
    return question_key(a) == question_key(b)


class StaffAccounts:
    """Staff accounts: a name and a password hash (werkzeug.security).

    :param url: the database (the conversation log's).
    """

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def add(self, name: str, password: str) -> None:
        """:raises ValueError: a name of the wrong form, a short password, or a name taken."""
        if not NAME_RE.match(name or ""):
            raise ValueError("账号名应为 2–32 个字母、数字、汉字或 _.- / a name is 2–32 letters, digits, CJK or _.-")
        if len(password or "") < MIN_PASSWORD_CHARS:
            raise ValueError(f"密码至少 {MIN_PASSWORD_CHARS} 位 / the password needs at least {MIN_PASSWORD_CHARS} characters")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(staff.c.id).where(staff.c.name == name)).first():
                raise ValueError(f"账号 {name} 已存在 / account {name!r} exists")
            conn.execute(staff.insert().values(name=name, password_hash=generate_password_hash(password),
                                               created_at=_now()))

    def check(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (the hash is compared even for an unknown name, so
        the time taken does not tell which names exist)."""
        with self.engine.connect() as conn:
            stored = conn.execute(sa.select(staff.c.password_hash).where(staff.c.name == name)).scalar()
        if stored is None:
            check_password_hash(_DUMMY_HASH, password or "")
            return False
        return check_password_hash(stored, password or "")

    def exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(staff.c.id).where(staff.c.name == name)).first() is not None

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(staff.c.name).order_by(staff.c.name))]


_DUMMY_HASH = generate_password_hash("not a password of anyone")


@dataclass
class Label:
    id: int
    doc: str
    question: str
    anchor: str
    by: str
    at: str
    undone_at: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "doc": self.doc, "question": self.question, "anchor": self.anchor, "by": self.by,
                "at": self.at, "undone_at": self.undone_at}


class LabelConflict(Exception):
    """The question is already labelled otherwise; ``earlier`` says how."""

    def __init__(self, earlier: dict) -> None:
        super().__init__(f"already labelled {earlier['anchor']}")
        self.earlier = earlier


class LabelBook:
    """Labels, in the database (who, when, undone) and in each notice's ``questions.tsv``.

    :param url: the database.
    :param questions_file: doc → the path of that notice's ``questions.tsv``.
    """

    def __init__(self, url: str, questions_file) -> None:
        self.engine = engine_for(url)
        self._file = questions_file

    def add(self, doc: str, question: str, anchor: str, by: str, replace: bool = False) -> Label:
        """Label ``question`` of ``doc`` as answered by ``anchor`` (or ``-``).

        :raises LabelConflict: when it is labelled otherwise already and ``replace`` is not set.
        """
        question = " ".join(question.split())
        path = Path(self._file(doc))
        with _locked(path):
            rows = _read_rows(path)
            earlier = [r for r in rows if same_question(r[0], question)]
            if any(r[1] == anchor for r in earlier) and not replace:
                raise LabelConflict({"question": earlier[0][0], "anchor": anchor, "same": True})
            differing = [r for r in earlier if r[1] != anchor]
            if differing and not replace:
                raise LabelConflict({"question": differing[0][0], "anchor": differing[0][1], "same": False})
            kept = [r for r in rows if not same_question(r[0], question)]
            kept.append([question, anchor, LABEL_KIND])
            _write_rows(path, kept)
        at = _now()
        with self.engine.begin() as conn:
            if replace:
                conn.execute(labels.update().where(labels.c.doc == doc, labels.c.undone_at.is_(None),
                                                   labels.c.question == question)
                             .values(undone_by=by, undone_at=at))
            new_id = conn.execute(labels.insert().values(doc=doc, question=question, anchor=anchor, by=by,
                                                         at=at)).inserted_primary_key[0]
        return Label(new_id, doc, question, anchor, by, at.isoformat(timespec="seconds"))

    def undo(self, label_id: int, by: str) -> Label | None:
        """Undo a label: its row leaves the notice's questions; ``None`` when there is no such
        label still in force."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(labels).where(labels.c.id == label_id, labels.c.undone_at.is_(None))).mappings().first()
            if row is None:
                return None
            conn.execute(labels.update().where(labels.c.id == label_id).values(undone_by=by, undone_at=_now()))
        path = Path(self._file(row["doc"]))
        with _locked(path):
            rows = _read_rows(path)
            kept = [r for r in rows if not (same_question(r[0], row["question"]) and r[1] == row["anchor"])]
            _write_rows(path, kept)
        return _label(row)

    def recent(self, limit: int = 50, doc: str | None = None) -> list[Label]:
        query = sa.select(labels).order_by(labels.c.id.desc()).limit(limit)
        if doc:
            query = query.where(labels.c.doc == doc)
        with self.engine.connect() as conn:
            return [_label(r) for r in conn.execute(query).mappings()]

    def labelled(self, doc: str) -> set[str]:
        """The keys of every question labelled for ``doc`` (by staff or in the tuning file)."""
        return {question_key(r[0]) for r in _read_rows(Path(self._file(doc)))}


def _label(row) -> Label:
    def iso(v):
        return v.isoformat(timespec="seconds") if isinstance(v, _dt.datetime) else v

    return Label(row["id"], row["doc"], row["question"], row["anchor"], row["by"], iso(row["at"]), iso(row["undone_at"]))


_HEADER = ["question", "expected", "kind"]


def _read_rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        return [row for row in reader if row and row[0].strip()]


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    """Atomically: a reader (the index build) sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        for row in [_HEADER, *rows]:
            handle.write("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row) + "\n")
    tmp.replace(path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer of a notice's questions at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
