"""The library of source notices: each ``<doc>.txt`` with its ``<doc>.yml`` metadata and, when
staff have labelled some, its ``<doc>.questions.tsv`` (see :mod:`knowledge.questions`)."""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.parser import Notice, NoticeParseError, parse_notice
from knowledge.questions import Question, load_questions

NOTICES_DIR = Path(__file__).resolve().parent / "notices"
SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.yml"
# The seed notice's labelled questions: what search learns from, and the benchmarks' tuning set.
SEED_QUESTIONS = NOTICES_DIR / "qingyuan-wlj-xuncha-2025.questions.tsv"
_REQUIRED = ("doc", "title", "issuer", "date", "period_start", "period_end")


@dataclass(frozen=True)
class NoticeMeta:
    """What a citizen needs to know about where an answer comes from."""

    doc: str
    title: str
    issuer: str
    date: str
    period_start: str
    period_end: str
    # Everyday words for what a passage covers, by anchor (search only, never quoted).
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # The places under the issuer (its counties and districts): a question about one of them is
    # about this notice's own area, not another city's, though the notice may not name it.
    area: tuple[str, ...] = field(default=(), compare=False)

    def aliases_for(self, anchor: str) -> tuple[str, ...]:
        """The aliases of a chunk; a split item's pieces (``item-4-p2``) share the item's."""
        if anchor in self.aliases:
            return self.aliases[anchor]
        head, sep, tail = anchor.rpartition("-p")
        return self.aliases.get(head, ()) if sep and tail.isdigit() and head.startswith("item-") else ()

    @property
    def full_title(self) -> str:
        """``中共…党组《关于…的通报》``, as a clerk would name it."""
        return f"{self.issuer}《{self.title}》"


@dataclass
class Library:
    """All notices, parsed, in a stable order."""

    notices: dict[str, Notice]
    meta: dict[str, NoticeMeta]
    folder: Path
    # Labelled questions by doc (from ``<doc>.questions.tsv``; a notice may have none).
    questions: dict[str, list[Question]] = field(default_factory=dict)

    def source_files(self) -> list[Path]:
        """The files whose content decides the index (for the manifest's hashes)."""
        return source_files(self.folder)


def source_files(folder: Path | None = None) -> list[Path]:
    """Every notice text, metadata and labelled-questions file in ``folder``, plus the synonyms
    list, sorted."""
    folder = Path(folder or NOTICES_DIR)
    files = sorted(folder.glob("*.txt")) + sorted(folder.glob("*.yml")) + sorted(folder.glob("*.questions.tsv"))
    if SYNONYMS_FILE.exists():
        files.append(SYNONYMS_FILE)
    return files


def fingerprint(files: list[Path]) -> dict[str, str]:
    """SHA-256 of each file, keyed by file name."""
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, (_dt.date, _dt.datetime)) else str(value)


def load_meta(path: Path) -> NoticeMeta:
    """Read and check one ``<doc>.yml``.

    :raises NoticeParseError: when a required key is missing.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in _REQUIRED if not data.get(key)]
    if missing:
        raise NoticeParseError(
            f"元数据文件 {path.name} 缺少字段：{'、'.join(missing)}。 / {path.name} lacks: {', '.join(missing)}."
        )
    return NoticeMeta(**{key: _iso(data[key]) for key in _REQUIRED}, aliases=_aliases(path, data.get("aliases")),
                      area=_area(path, data.get("area")))


def _area(path: Path, raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NoticeParseError(
            f"元数据文件 {path.name} 的 area 应为地名列表。 / {path.name}: area must be a list of place names."
        )
    return tuple(dict.fromkeys(str(v).strip() for v in raw if v is not None and str(v).strip()))


def _aliases(path: Path, raw: object) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise NoticeParseError(
            f"元数据文件 {path.name} 的 aliases 应为“锚点: [词语…]”。 / {path.name}: aliases must map anchors to lists."
        )
    out = {}
    for anchor, values in raw.items():
        values = values if isinstance(values, list) else [values]
        words = tuple(dict.fromkeys(str(v).strip() for v in values if v is not None and str(v).strip()))
        if words:
            out[str(anchor)] = words
    return out


def _unknown_anchors(notice: Notice, named) -> list[str]:
    """The anchors in ``named`` that ``notice`` does not have, sorted."""
    anchors = {node.anchor for node in notice.walk()}
    return sorted({a for a in named if a not in anchors})


def _check_aliases(meta: NoticeMeta, notice: Notice, path: Path) -> None:
    unknown = _unknown_anchors(notice, meta.aliases)
    if unknown:
        raise NoticeParseError(
            f"元数据文件 {path.name} 的 aliases 指向通报中不存在的段落：{'、'.join(unknown)}。 / "
            f"{path.name}: aliases name anchors the notice does not have: {', '.join(unknown)}."
        )


def _load_labelled(path: Path, notice: Notice) -> list[Question]:
    try:
        questions = load_questions(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NoticeParseError(f"问题文件 {path.name} 格式有误：{exc} / {path.name} is malformed: {exc}") from exc
    unknown = _unknown_anchors(notice, (a for q in questions for a in q.expected))
    if unknown:
        raise NoticeParseError(
            f"问题文件 {path.name} 指向通报中不存在的段落：{'、'.join(unknown)}。 / "
            f"{path.name}: questions name anchors the notice does not have: {', '.join(unknown)}."
        )
    return questions


def load_library(folder: Path | str | None = None) -> Library:
    """Parse every notice in ``folder`` (default: ``knowledge/notices``).

    :raises NoticeParseError: when a notice lacks its metadata or cannot be parsed.
    """
    folder = Path(folder or NOTICES_DIR)
    texts = sorted(folder.glob("*.txt"))
    if not texts:
        raise NoticeParseError(f"目录 {folder} 中没有通报文件（*.txt）。 / No notices (*.txt) in {folder}.")
    notices: dict[str, Notice] = {}
    metas: dict[str, NoticeMeta] = {}
    labelled: dict[str, list[Question]] = {}
    for text_file in texts:
        meta_file = text_file.with_suffix(".yml")
        if not meta_file.exists():
            raise NoticeParseError(
                f"通报 {text_file.name} 缺少元数据文件 {meta_file.name}。 / {text_file.name} has no {meta_file.name}."
            )
        meta = load_meta(meta_file)
        notices[meta.doc] = parse_notice(text_file.read_text(encoding="utf-8"), meta.doc)
        _check_aliases(meta, notices[meta.doc], meta_file)
        metas[meta.doc] = meta
        questions_file = text_file.with_suffix(".questions.tsv")
        if questions_file.exists():
            labelled[meta.doc] = _load_labelled(questions_file, notices[meta.doc])
    return Library(notices, metas, folder, labelled)


def load_synonyms(path: Path | None = None) -> dict[str, list[str]]:
    """Staff-curated query expansions: ``{term: [expansions…]}``."""
    path = Path(path or SYNONYMS_FILE)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in data.items()}
