"""The library of source notices. Each notice is a folder ``<doc>/`` holding ``notice.txt`` (the
text exactly as published), ``notice.yml`` (its metadata) and, when staff have labelled some,
``questions.tsv`` (see :mod:`knowledge.questions`). The flat form ``<doc>.txt`` + ``<doc>.yml`` +
``<doc>.questions.tsv`` is read too."""

from __future__ import annotations

import datetime as _dt
import hashlib
import shutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.fields import FieldVocabulary, check_name, field_vocabulary
from knowledge.parser import Notice, NoticeParseError, parse_notice
from knowledge.questions import Question, load_questions

NOTICES_DIR = Path(__file__).resolve().parent / "notices"
SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.yml"
# The files of a notice's folder.
NOTICE_TEXT, NOTICE_META, NOTICE_QUESTIONS = "notice.txt", "notice.yml", "questions.tsv"
# A notice's own Rasa NLU examples (questions about its topics), beside bot/data/nlu.yml's genre ones.
NOTICE_NLU = "nlu.yml"
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
    # The widget's opening questions, when staff want their own (else the bot derives them from
    # the notice's structure).
    welcome: tuple[str, ...] = field(default=(), compare=False)
    # Query expansions of the notice's own field (喇叭 → 应急广播), merged with the genre's.
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # The issuer's field (``health``: ``knowledge/fields/health.yml``), whose vocabulary of services,
    # places and offices the scope reads; empty: the common vocabulary only.
    field: str = field(default="", compare=False)

    def aliases_for(self, anchor: str) -> tuple[str, ...]:
        """The aliases of a chunk; a split item's pieces (``item-4-p2``) share the item's."""
        if anchor in self.aliases:
            return self.aliases[anchor]
        anchor = re.sub(r"-s\d+$", "", anchor)  # a long passage's pieces share its aliases
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
    # The vocabulary of the notices' fields, common's included (knowledge/fields/), read once.
    fields: FieldVocabulary | None = None

    def source_files(self) -> list[Path]:
        """The files whose content decides the index (for the manifest's hashes)."""
        return source_files(self.folder)


def notice_files(folder: Path) -> list[tuple[Path, Path, Path]]:
    """``(text, metadata, questions)`` of each notice in ``folder``, folders and flat files alike,
    sorted by the text's path (the questions file may not exist)."""
    found = []
    for text in sorted(folder.glob(f"*/{NOTICE_TEXT}")):
        found.append((text, text.with_name(NOTICE_META), text.with_name(NOTICE_QUESTIONS)))
    for text in sorted(folder.glob("*.txt")):
        found.append((text, text.with_suffix(".yml"), text.with_suffix(".questions.tsv")))
    return found


def questions_path(folder: Path | None, doc: str) -> Path:
    """The labelled-questions file of notice ``doc`` in ``folder`` (it may not exist yet).

    :raises KeyError: when no notice there is ``doc``.
    """
    folder = Path(folder or NOTICES_DIR)
    for text, meta, questions in notice_files(folder):
        own = text.parent.name if text.name == NOTICE_TEXT else text.stem
        if own == doc or (meta.exists() and load_meta(meta).doc == doc):
            return questions
    raise KeyError(doc)


def nlu_files(folder: Path | None = None) -> list[Path]:
    """The notices' own Rasa NLU files (``<doc>/nlu.yml``) in ``folder``, sorted; a notice may
    have none."""
    folder = Path(folder or NOTICES_DIR)
    return sorted(folder.glob(f"*/{NOTICE_NLU}"))


def source_files(folder: Path | None = None) -> list[Path]:
    """Every notice text, metadata and labelled-questions file in ``folder``, plus the synonyms
    list."""
    folder = Path(folder or NOTICES_DIR)
    files = [f for triple in notice_files(folder) for f in triple if f.exists()]
    if SYNONYMS_FILE.exists():
        files.append(SYNONYMS_FILE)
    return files


def source_name(path: Path) -> str:
    """How the index names a source file: ``<doc>/notice.txt`` for a notice folder's files, else
    the file name (``synonyms.yml``, flat ``<doc>.txt``)."""
    path = Path(path)
    if path.name in (NOTICE_TEXT, NOTICE_META, NOTICE_QUESTIONS):
        return f"{path.parent.name}/{path.name}"
    return path.name


def fingerprint(files: list[Path]) -> dict[str, str]:
    """SHA-256 of each file, keyed by :func:`source_name`."""
    return {source_name(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


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
                      area=_area(path, data.get("area")), welcome=_strings(path, "welcome", data.get("welcome")),
                      synonyms=_aliases(path, data.get("synonyms"), "synonyms"), field=_field(path, data.get("field")))


def _field(path: Path, raw: object) -> str:
    if raw is None or raw == "":
        return ""
    try:
        return check_name(raw)
    except NoticeParseError as exc:
        raise NoticeParseError(f"元数据文件 {path.name}：{exc}") from None


def _area(path: Path, raw: object) -> tuple[str, ...]:
    return _strings(path, "area", raw, "地名列表", "a list of place names")


def _strings(path: Path, key: str, raw: object, zh: str = "列表", en: str = "a list") -> tuple[str, ...]:
    """A metadata list of texts, blanks and repeats dropped."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NoticeParseError(f"元数据文件 {path.name} 的 {key} 应为{zh}。 / {path.name}: {key} must be {en}.")
    return tuple(dict.fromkeys(str(v).strip() for v in raw if v is not None and str(v).strip()))


def _aliases(path: Path, raw: object, key: str = "aliases") -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise NoticeParseError(
            f"元数据文件 {path.name} 的 {key} 应为“词语: [词语…]”。 / {path.name}: {key} must map words to lists."
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
    found = notice_files(folder)
    if not found:
        raise NoticeParseError(f"目录 {folder} 中没有通报（<doc>/notice.txt 或 *.txt）。 / "
                               f"No notices (<doc>/notice.txt or *.txt) in {folder}.")
    notices: dict[str, Notice] = {}
    metas: dict[str, NoticeMeta] = {}
    labelled: dict[str, list[Question]] = {}
    for text_file, meta_file, questions_file in found:
        if not meta_file.exists():
            raise NoticeParseError(
                f"通报 {source_name(text_file)} 缺少元数据文件 {source_name(meta_file)}。 / "
                f"{source_name(text_file)} has no {source_name(meta_file)}."
            )
        meta = load_meta(meta_file)
        if meta.doc in notices:
            raise NoticeParseError(f"两份通报的 doc 都是 {meta.doc}。 / Two notices have doc {meta.doc}.")
        notices[meta.doc] = parse_notice(text_file.read_text(encoding="utf-8"), meta.doc)
        _check_aliases(meta, notices[meta.doc], meta_file)
        metas[meta.doc] = meta
        if questions_file.exists():
            labelled[meta.doc] = _load_labelled(questions_file, notices[meta.doc])
    return Library(notices, metas, folder, labelled, field_vocabulary(m.field for m in metas.values()))


def merged_synonyms(library: Library, genre: dict[str, list[str]]) -> dict[str, list[str]]:
    """The genre's query expansions with every notice's own (``synonyms:`` in its notice.yml)."""
    out = {k: list(v) for k, v in genre.items()}
    for meta in library.meta.values():
        for key, values in meta.synonyms.items():
            out[key] = list(dict.fromkeys([*out.get(key, []), *values]))
    return out


def load_synonyms(path: Path | None = None) -> dict[str, list[str]]:
    """Staff-curated query expansions: ``{term: [expansions…]}``."""
    path = Path(path or SYNONYMS_FILE)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in data.items()}


def write_notice(folder: Path | str, text: str, meta: dict) -> Path:
    """Check and add one notice to the library as its folder ``<doc>/`` (``notice.txt`` exactly as
    given, ``notice.yml`` from ``meta``). Nothing is written when it cannot be read.

    :raises NoticeParseError: a missing field, a doc already there, a ``field`` with no vocabulary
        file in ``knowledge/fields/``, or a text without the genre's structure.
    """
    missing = [key for key in _REQUIRED if not meta.get(key)]
    if missing:
        raise NoticeParseError(f"缺少字段：{'、'.join(missing)}。 / Missing: {', '.join(missing)}.")
    if meta.get("field"):
        field_vocabulary([meta["field"]])  # an unknown field is refused here, not when the library loads
    doc = str(meta["doc"])
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}", doc):
        raise NoticeParseError(f"doc 只能由字母、数字、- 和 _ 组成：{doc} / doc must be letters, digits, - or _: {doc!r}")
    folder = Path(folder)
    target = folder / doc
    existing = {m.doc for m in (load_meta(f[1]) for f in notice_files(folder) if f[1].exists())}
    if target.exists() or doc in existing:
        raise NoticeParseError(f"已有 doc 为 {doc} 的通报。 / A notice with doc {doc!r} is already there.")
    parse_notice(text, doc)  # refuse what cannot be read, before anything is written
    tmp = folder / f".{doc}.adding"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / NOTICE_TEXT).write_text(text, encoding="utf-8")
    (tmp / NOTICE_META).write_text(yaml.safe_dump({k: v for k, v in meta.items() if v not in (None, "", [])},
                                                  allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.rename(target)
    return target


def describe(notice: Notice) -> tuple[list[str], list[str]]:
    """What the parser read of a notice, for staff: lines of its structure, and warnings."""
    lines, warnings = [], []
    for node in notice.nodes:
        if node.kind == "part":
            topics = [c for c in node.children if c.kind == "topic"]
            items = [i for c in node.children for i in ([c] if c.kind == "item" else c.children) if i.kind == "item"]
            sections = [c for c in node.children if c.kind == "section"]
            points = [c for c in node.children if c.kind == "point"]
            parts = [f"{len(topics)} 个方面" if topics else "", f"{len(items)} 条" if items else "",
                     f"{len(sections)} 段" if sections else "", f"{len(points)} 个要点" if points else ""]
            lines.append(f"{node.label}{node.heading}：" + ("，".join(p for p in parts if p) or "一段正文"))
            for item in items:
                n = len([c for c in item.children if c.kind == "point"])
                lines.append(f"  第{item.number}条 {item.heading[:30]}" + (f"（{n} 个要点）" if n else ""))
                if not n:
                    warnings.append(f"第{item.number}条没有分出要点（一是、二是…或 1. 2. …），将整条检索。")
        elif node.kind in ("preamble", "contact"):
            lines.append({"preamble": "前言", "contact": "联系方式"}[node.kind] + f"：{len(node.text)} 字")
    c = notice.contact
    if notice.find("contact") is None:
        warnings.append("没有找到含电话或邮箱的结尾段落：拒答时将无法给出联系方式。")
    else:
        lines.append(f"  电话 {c.phone or '（未找到）'}，邮箱 {c.email or '（未找到）'}，地址 {c.address or '（未找到）'}")
        if not c.phone:
            warnings.append("结尾段落中没有找到联系电话。")
    if not notice.items():
        warnings.append("没有找到编号条目（1. 或 问题1：），将按段落检索。")
    return lines, warnings
