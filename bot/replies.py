"""The bot's own wording, read from the Rasa project's ``domain.yml`` (the single source of it)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

DOMAIN_FILE = Path(__file__).resolve().parent / "domain.yml"


class _Fields(dict):
    """Template fields; a placeholder with no value stays as it is written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@functools.lru_cache(maxsize=4)
def load_domain(path: Path = DOMAIN_FILE) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def render(domain: dict, response: str, fields: dict | None = None) -> str:
    """A response's first variation, its ``{placeholders}`` filled as Rasa fills them."""
    variants = (domain.get("responses") or {}).get(response) or [{"text": ""}]
    values = {k: v for k, v in (fields or {}).items() if v is not None and not isinstance(v, (dict, list))}
    return variants[0].get("text", "").format_map(_Fields(values))
