"""The embeddable widget: one script (``/widget.js``), its settings written into it from the
notices, no external resources."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, url_for
from jinja2.utils import htmlsafe_json_dumps

from web.common import current_library

bp = Blueprint("widget", __name__)

_widget_cache: dict[Path, tuple[float, str]] = {}


def _widget_source() -> str:
    path = Path(current_app.static_folder) / "widget.js"
    mtime = path.stat().st_mtime
    cached = _widget_cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, path.read_text(encoding="utf-8"))
        _widget_cache[path] = cached
    return cached[1]


def widget_config() -> dict:
    """What the widget shows before the first answer: all from the notices and the settings. The
    top level is for a page of no particular notice; ``notices[doc]`` is what a page that embeds
    the widget with ``data-doc`` shows instead."""
    library = current_library()
    bot = current_app.extensions["live_bot"].bot
    notices = {doc: _widget_notice(doc, bot) for doc in library.notices}
    config = {
        "title": "整改通报问答",
        "maxChars": current_app.config["MAX_MESSAGE_CHARS"],
        "webhook": url_for("api.webhook"),
        "feedback": url_for("api.feedback"),
        "notices": notices,
    }
    if len(notices) == 1:
        config.update(next(iter(notices.values())))
    else:
        titles = "、".join(meta.full_title for meta in library.meta.values())
        config.update(welcome=f"您好！我可以根据本站公开的整改通报（{titles}）回答您的问题，每条回答都注明出处。请问您想了解什么？",
                      suggestions=(list(bot.answerer.welcome_suggestions()) if bot is not None else [])[:6],
                      noticeUrl=url_for("pages.notices_index"))
    return config


def _widget_notice(doc: str, bot) -> dict:
    library = current_library()
    notice, meta = library.notices[doc], library.meta[doc]
    suggestions = list(bot.answerer.welcome_suggestions(doc)) if bot is not None else []
    return {
        "welcome": f"您好！我可以根据{meta.full_title}回答您的问题，每条回答都注明出处。请问您想了解什么？",
        "suggestions": suggestions[:6],
        "phone": notice.contact.phone,
        "email": notice.contact.email,
        "noticeTitle": meta.full_title,
        "noticeUrl": url_for("pages.notice_doc", doc=doc),
    }


def widget_js():
    """The embed: one script, no external resources; its settings are written into it."""
    config = htmlsafe_json_dumps(widget_config(), ensure_ascii=False)
    source = _widget_source().replace("/*__WIDGET_CONFIG__*/{}", str(config), 1)
    response = Response(source, mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public script, like any CDN file
    return response


bp.add_url_rule("/widget.js", "widget_js", widget_js)
