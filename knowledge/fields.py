"""Field vocabularies: the words of a bureau's field that decide what a notice cannot answer.

Each field is a file ``knowledge/fields/<field>.yml`` with three lists of plain words:
``services`` (personal services a citizen asks for and no rectification notice answers: 门票,
挂号), ``places`` (kinds of place: 景区, 场馆) and ``offices`` (kinds of organisation: 酒店, 医院).
``common.yml`` holds what every notice gets (身份证, 办理, 企业); a notice names its own field in
its metadata (``field:`` in ``notice.yml``), and the library's vocabulary is common's and every
notice's field's, merged (:func:`field_vocabulary`). How a question asks (怎么, 哪个, 多少钱) is the
language's, not a field's, and stays in code (``bot.scope``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from knowledge.parser import NoticeParseError

FIELDS_DIR = Path(__file__).resolve().parent / "fields"
# The vocabulary of every notice, and all a notice with no ``field:`` gets.
COMMON = "common"
LISTS = ("services", "places", "offices")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,60}")


@dataclass(frozen=True)
class FieldVocabulary:
    """One field's lists (or several merged), in file order, without repeats.

    :param name: the file's name without ``.yml`` (``health``), or the merged ones joined by ``+``.
    """

    name: str
    title: str = ""
    services: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    offices: tuple[str, ...] = ()

    def merged(self, other: "FieldVocabulary") -> "FieldVocabulary":
        """This vocabulary with ``other``'s words added after its own."""
        return FieldVocabulary(
            f"{self.name}+{other.name}", "、".join(t for t in (self.title, other.title) if t),
            *(tuple(dict.fromkeys(getattr(self, key) + getattr(other, key))) for key in LISTS))


def field_names(folder: Path | None = None) -> list[str]:
    """The fields there are files for (``common`` aside), sorted: what a notice's ``field:`` may say."""
    folder = Path(folder or FIELDS_DIR)
    return sorted(p.stem for p in folder.glob("*.yml") if p.stem != COMMON)


def check_name(name: str) -> str:
    """``name`` if it can name a field file.

    :raises NoticeParseError: when it cannot (letters a–z, digits and -).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise NoticeParseError(f"领域名只能由小写字母、数字和 - 组成：{name!r} / "
                               f"a field is named in lower-case letters, digits and -: {name!r}")
    return name


def load_field(name: str, folder: Path | None = None) -> FieldVocabulary:
    """Read ``<folder>/<name>.yml`` (default folder: ``knowledge/fields``).

    :raises NoticeParseError: the file is missing, is not YAML, or a list is not a list of words;
        the message names the file and, for a missing one, the fields there are.
    """
    folder = Path(folder or FIELDS_DIR)
    path = folder / f"{check_name(name)}.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = "、".join(field_names(folder)) or "（无）"
        raise NoticeParseError(f"没有领域词表文件 {path}；已有的领域：{known}。 / "
                               f"No field file {path}; the fields are: {', '.join(field_names(folder))}.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NoticeParseError(f"领域词表文件 {path} 格式有误：{exc} / {path} is malformed: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NoticeParseError(f"领域词表文件 {path} 应为“列表名: [词语…]”。 / {path} must map list names to lists.")
    unknown = sorted(set(data) - {"title", *LISTS})
    if unknown:
        raise NoticeParseError(f"领域词表文件 {path} 有未知的键：{'、'.join(map(str, unknown))}（可用：{'、'.join(LISTS)}）。 / "
                               f"{path}: unknown keys {', '.join(map(str, unknown))} (known: {', '.join(LISTS)}).")
    lists = {}
    for key in LISTS:
        raw = data.get(key) or []
        if not isinstance(raw, list) or not all(isinstance(w, str) and w.strip() for w in raw):
            raise NoticeParseError(f"领域词表文件 {path} 的 {key} 应为词语列表。 / {path}: {key} must be a list of words.")
        lists[key] = tuple(dict.fromkeys(w.strip() for w in raw))
    return FieldVocabulary(name, str(data.get("title") or ""), **lists)


def field_vocabulary(names: Iterable[str | None], folder: Path | None = None) -> FieldVocabulary:
    """Common's vocabulary with each named field's merged in (``None`` or ``""``: common's only).

    :raises NoticeParseError: see :func:`load_field`.
    """
    vocabulary = load_field(COMMON, folder)
    for name in dict.fromkeys(n for n in names if n and n != COMMON):
        vocabulary = vocabulary.merged(load_field(name, folder))
    return vocabulary
