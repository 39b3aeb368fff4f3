"""What the blueprints share: the bot answering now, the notices, the API's error body and the
origins allowed to embed the widget. Nothing here is a route."""

from __future__ import annotations

import re

from flask import Response, current_app, jsonify

from bot.live import LiveBot

# Text a citizen can type: no lone surrogates (they cannot be encoded, and the tokenizer and JSON
# encoder fail on them) and no control characters but tab and line breaks.
BAD_CHARS_RE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_HIGHLIGHTS = 12


def live_bot() -> LiveBot:
    """The bot of this process, swapped for a newer index when one is ready."""
    live = current_app.extensions["live_bot"]
    live.refresh()
    return live


def current_library():
    """The notices of the bot answering now (their text is what citations point into), else
    those on disk."""
    bot = current_app.extensions["live_bot"].bot
    return bot.retriever.library if bot is not None else current_app.extensions["library"]


def error(status: int, code: str, message: str, detail: str, headers: dict | None = None,
          extra: dict | None = None) -> Response:
    """The API's error body: a code, a Chinese ``message`` for people, an English ``detail``
    (and ``extra`` fields, for operations)."""
    response = jsonify({"error": code, "message": message, "detail": detail, **(extra or {})})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def bad_request(code: str, message: str, detail: str) -> Response:
    return error(400, code, message, detail)


def first_contact():
    notice = next(iter(current_library().notices.values()))
    return notice.contact


def site_name(meta) -> str:
    name = current_app.config["SITE_NAME"]
    if name:
        return name
    issuer = meta.issuer.removeprefix("中共")
    return issuer.removesuffix("党组") or meta.issuer


def welcome(doc: str) -> list[str]:
    bot = current_app.extensions["live_bot"].bot
    return list(bot.answerer.welcome_suggestions(doc)) if bot is not None else []


def allowed_origin(origin: str | None) -> str | None:
    if not origin:
        return None
    allowed = current_app.config["ALLOWED_ORIGINS"]
    if "*" in allowed or origin.rstrip("/") in allowed:
        return origin
    return None


def not_answering(live: LiveBot) -> Response:
    """503 while no index answers: being built (or the model loading), or unusable."""
    contact = first_contact()
    reach = f"如需帮助，请拨打{contact.phone}" if contact.phone else "如需帮助，请联系发布通报的单位"
    state = live.status()["state"]
    if state == "starting":
        return error(503, "starting", f"咨询服务正在启动，请稍候几秒再试。{reach}。",
                     "The model and index are still loading.", {"Retry-After": "5"})
    if state == "building":
        return error(503, "updating", f"咨询服务正在更新通报内容，约需一两分钟，请稍后再试。{reach}。",
                     "The index is being built; try again shortly.", {"Retry-After": "30"})
    return error(503, "unavailable", f"咨询服务暂时不可用，请稍后再试。{reach}。", "No usable index; see the server log.",
                 {"Retry-After": "60"})
