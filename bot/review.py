"""What citizens asked, read back from the conversation log for the staff console: the turns with
filters, questions per day, the items asked about most, each notice's figures, and the questions
to teach (declined, 👎 or answered unsurely), near-duplicates grouped."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from bot.convlog import engine_for, turns

# An answer the scope model gave with at least this probability that the notice does not answer
# it is "low confidence" (the model answers below 0.5).
LOW_CONFIDENCE = 0.3
# Two questions at least this close (cosine, the search's model) are one question to teach.
GROUP_SIMILARITY = 0.92
MAX_PER_PAGE = 200


@dataclass
class TurnFilter:
    """Which turns: declined, 👎, low confidence, a notice, a date range (UTC days), a text."""

    declined: bool = False
    down: bool = False
    low: bool = False
    doc: str | None = None
    since: _dt.date | None = None
    until: _dt.date | None = None
    text: str | None = None

    def where(self):
        c = turns.c
        conditions = []
        kinds = []
        if self.declined:
            kinds.append(c.answered.is_(False))
        if self.down:
            kinds.append(c.rating == "down")
        if self.low:
            kinds.append(sa.and_(c.answered.is_(True), c.p_out_of_scope >= LOW_CONFIDENCE))
        if kinds:
            conditions.append(sa.or_(*kinds))
        if self.doc:
            conditions.append(sa.or_(c.doc == self.doc, c.cited_doc == self.doc))
        if self.since:
            conditions.append(c.at >= _start_of(self.since))
        if self.until:
            conditions.append(c.at < _start_of(self.until + _dt.timedelta(days=1)))
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(c.question.like(f"%{escaped}%", escape="\\"))
        return sa.and_(sa.true(), *conditions)


def _start_of(day: _dt.date) -> _dt.datetime:
    return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc)


def _iso(value) -> str | None:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:  # SQLite gives back naive datetimes; they were stored in UTC
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat(timespec="seconds")
    return value


_COLUMNS = ("turn_id", "at", "doc", "question", "intent", "answered", "kind", "reason", "cited_doc",
            "cited_anchors", "top_score", "p_out_of_scope", "rating", "feedback_reason", "feedback_comment")


class TurnBrowser:
    """Read-only queries over the log.

    :param url: the conversation log's database.
    """

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def page(self, where: TurnFilter, page: int = 1, per_page: int = 50) -> dict:
        """``{"total", "page", "per_page", "rows"}``, newest first."""
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        condition = where.where()
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(turns).where(condition)).scalar() or 0
            rows = conn.execute(sa.select(*[turns.c[n] for n in _COLUMNS]).where(condition)
                                .order_by(turns.c.id.desc()).limit(per_page).offset((page - 1) * per_page)).mappings()
            out = [{k: _iso(v) for k, v in row.items()} for row in rows]
        return {"total": total, "page": page, "per_page": per_page, "rows": out}

    def all(self, where: TurnFilter):
        """Every matching row, oldest first (for the CSV export)."""
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(*[turns.c[n] for n in _COLUMNS]).where(where.where())
                                    .order_by(turns.c.id)).mappings():
                yield {k: _iso(v) for k, v in row.items()}

    def per_day(self, days: int = 30, doc: str | None = None, today: _dt.date | None = None) -> list[dict]:
        """The last ``days`` days (UTC): questions, declined, 👎 — every day, zeros included."""
        today = today or _dt.datetime.now(_dt.timezone.utc).date()
        first = today - _dt.timedelta(days=days - 1)
        counts = {first + _dt.timedelta(days=i): [0, 0, 0] for i in range(days)}
        where = TurnFilter(doc=doc, since=first, until=today).where()
        with self.engine.connect() as conn:
            for at, answered, rating in conn.execute(sa.select(turns.c.at, turns.c.answered, turns.c.rating).where(where)):
                day = (at if at.tzinfo else at.replace(tzinfo=_dt.timezone.utc)).astimezone(_dt.timezone.utc).date()
                if day in counts:
                    counts[day][0] += 1
                    counts[day][1] += int(not answered)
                    counts[day][2] += int(rating == "down")
        return [{"day": d.isoformat(), "questions": n, "declined": x, "down": b} for d, (n, x, b) in counts.items()]

    def figures(self, docs: list[str]) -> dict[str, dict]:
        """Per notice: questions asked, the share declined, the share 👎, and the items cited most."""
        out = {}
        with self.engine.connect() as conn:
            for doc in docs:
                mine = sa.or_(turns.c.doc == doc, turns.c.cited_doc == doc)
                asked, declined, down = conn.execute(sa.select(
                    sa.func.count(), sa.func.sum(sa.case((turns.c.answered.is_(False), 1), else_=0)),
                    sa.func.sum(sa.case((turns.c.rating == "down", 1), else_=0))).where(mine)).one()
                top: dict[str, int] = {}
                for (anchors,) in conn.execute(sa.select(turns.c.cited_anchors).where(turns.c.cited_doc == doc,
                                                                                      turns.c.cited_anchors.is_not(None))):
                    first = anchors.split(",")[0]
                    top[first] = top.get(first, 0) + 1
                asked = asked or 0
                out[doc] = {"asked": asked, "declined": round((declined or 0) / asked, 3) if asked else 0.0,
                            "down": round((down or 0) / asked, 3) if asked else 0.0,
                            "top_items": sorted(({"anchor": a, "count": n} for a, n in top.items()),
                                                key=lambda r: (-r["count"], r["anchor"]))[:5]}
        return out

    def to_teach(self, doc: str | None = None, limit: int = 500) -> list[dict]:
        """The questions to teach, newest first: declined, 👎, or answered unsurely."""
        where = TurnFilter(declined=True, down=True, low=True, doc=doc).where()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*[turns.c[n] for n in _COLUMNS]).where(where)
                                .order_by(turns.c.id.desc()).limit(limit)).mappings()
            return [{k: _iso(v) for k, v in row.items()} for row in rows]


def group_questions(rows: list[dict], embed, threshold: float = GROUP_SIMILARITY) -> list[dict]:
    """Near-duplicate questions as one group each (the first asked most stands for it).

    :param embed: text → unit vector (the search's query embedding).
    :returns: ``[{"question", "questions", "count", "doc", "why"}]``, the largest groups first.
    """
    by_text: dict[str, list[dict]] = {}
    for row in rows:
        by_text.setdefault(" ".join(row["question"].split()), []).append(row)
    texts = sorted(by_text, key=lambda t: -len(by_text[t]))
    groups: list[dict] = []
    vectors: list[np.ndarray] = []
    for text in texts:
        vector = np.asarray(embed(text), dtype=np.float32).reshape(-1)
        home = next((i for i, v in enumerate(vectors) if float(v @ vector) >= threshold
                     and groups[i]["doc"] == _doc_of(by_text[text])), None)
        if home is None:
            vectors.append(vector)
            groups.append({"question": text, "questions": [], "count": 0, "doc": _doc_of(by_text[text]), "why": []})
            home = len(groups) - 1
        group = groups[home]
        group["questions"].append(text)
        group["count"] += len(by_text[text])
        for row in by_text[text]:
            down = row["rating"] == "down"
            reasons = (["👎"] if down else []) + ["没有回答" if not row["answered"] else "👎" if down else "把握低"]
            group["why"] += [why for why in dict.fromkeys(reasons) if why not in group["why"]]
    return sorted(groups, key=lambda g: -g["count"])


def _doc_of(rows: list[dict]) -> str | None:
    for row in rows:
        if row.get("cited_doc") or row.get("doc"):
            return row.get("cited_doc") or row.get("doc")
    return None
