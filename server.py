"""The web front end: Rasa's REST webhook, the notice pages, the embeddable widget and a demo page.

``create_app(test_config=None)`` builds the Flask app; ``python server.py`` serves it on
``HOST:PORT`` (``make run``), and ``gunicorn --workers 2 --preload 'server:create_app()'`` in
production (``make serve``). Settings: defaults, then the environment, then ``test_config``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

from flask import Flask, Response, current_app, jsonify, render_template, request, url_for
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup, escape
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

from bot.live import LiveBot
from bot.remote import RasaUnavailableError

log = logging.getLogger("server")

DEFAULTS = {
    "HOST": "127.0.0.1",
    "PORT": 5000,
    # Origins (scheme://host[:port]) of the sites allowed to embed the widget; "*" allows any.
    "ALLOWED_ORIGINS": "",
    "MAX_MESSAGE_CHARS": 500,
    "MAX_SENDER_CHARS": 128,
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # Optional absolute base of citation links (https://zixun.example.gov.cn); relative if unset.
    "PUBLIC_URL": "",
    # "blocking": load model and index inside create_app (gunicorn --preload shares them);
    # "background": serve pages at once and load in a thread (python server.py).
    "WARM_UP": "blocking",
    "EMBEDDING_MODEL": None,
    "LIBRARY_DIR": None,
    "INDEX_DIR": None,
    "SESSION_TTL": 1800,
    # Where conversations live: an endpoints.yml with a tracker_store (Rasa's keys; make serve
    # uses bot/endpoints.yml: SQLite under var/); unset: in memory. REDIS_URL alone selects Redis.
    "ENDPOINTS": None,
    "REDIS_URL": None,
    "MAX_SESSIONS": 10000,
    # "embedded" (the dialogue runs in-process) or "rasa" (relay to RASA_URL's REST channel).
    "BOT_BACKEND": None,
    "RASA_URL": None,
    # /healthz shows its details (model, counts, the reason of a failed load) on loopback, or to a
    # request carrying this token in X-Health-Token; the public sees only the status.
    "HEALTH_TOKEN": "",
    # The demo page's site name; unset: the issuer without "中共" and "党组".
    "SITE_NAME": "",
    # Per client, on the public POST (Flask-Limiter's syntax, ";"-separated); "off": no limit.
    "RATE_LIMITS": "20 per minute;200 per day",
    # Where the counts live (a `limits` storage URI); unset: REDIS_URL when set, so limits hold
    # across workers and machines, else this process's memory.
    "RATE_LIMIT_STORAGE": "",
    # How many proxies (nginx) stand in front: their X-Forwarded-For names the client. 0: none,
    # and the header is ignored (anyone can send it).
    "TRUSTED_PROXIES": 0,
    # The conversation log (bot/convlog.py): "on" writes one masked row per turn to DATABASE_URL
    # (unset: a SQLite file under var/); "off" keeps nothing. Tests turn it on where they test it.
    "CONVERSATION_LOG": "on",
    "DATABASE_URL": None,
    "LOG_RETENTION_DAYS": 180,
}
_INT_KEYS = ("PORT", "MAX_MESSAGE_CHARS", "MAX_SENDER_CHARS", "MAX_CONTENT_LENGTH", "MAX_SESSIONS", "TRUSTED_PROXIES")
_API_PREFIXES = ("/webhooks/", "/healthz", "/api/")
_MAX_HIGHLIGHTS = 12
# Text a citizen can type: no lone surrogates (they cannot be encoded, and the tokenizer and JSON
# encoder fail on them) and no control characters but tab and line breaks.
_BAD_CHARS_RE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# metadata: a small, flat object (the widget sends the page and the notice).
_MAX_METADATA_CHARS = 2048
_MAX_METADATA_DEPTH = 3
_HL_RE = re.compile(r"^(\d{1,7})-(\d{1,7})$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)


# ---- the app ------------------------------------------------------------------------------------


def _env_settings() -> dict:
    out = {}
    for key in DEFAULTS:
        value = os.environ.get(key)
        if value is None or value == "":
            continue
        out[key] = value
    return out


def _normalise(config: dict) -> None:
    for key in _INT_KEYS:
        try:
            config[key] = int(config[key])
        except (TypeError, ValueError):
            raise ValueError(f"setting {key} must be an integer, got {config[key]!r}") from None
    origins = config["ALLOWED_ORIGINS"]
    if isinstance(origins, str):
        origins = [o.strip().rstrip("/") for o in origins.split(",")]
    config["ALLOWED_ORIGINS"] = [o for o in origins if o]
    for origin in config["ALLOWED_ORIGINS"]:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            raise ValueError(f"ALLOWED_ORIGINS entries look like https://www.example.gov.cn, got {origin!r}")
    if config["WARM_UP"] not in ("blocking", "background"):
        raise ValueError(f"WARM_UP must be 'blocking' or 'background', got {config['WARM_UP']!r}")
    config["PUBLIC_URL"] = (config["PUBLIC_URL"] or "").rstrip("/")
    if config["TRUSTED_PROXIES"] < 0:
        raise ValueError(f"TRUSTED_PROXIES must be 0 or more, got {config['TRUSTED_PROXIES']}")
    limits = str(config["RATE_LIMITS"] or "").strip()
    if limits.lower() in ("off", "none", "0"):
        limits = ""
    try:
        parse_many(limits) if limits else None
    except ValueError:
        raise ValueError(f"RATE_LIMITS looks like '20 per minute;200 per day' (or 'off'), got {limits!r}") from None
    config["RATE_LIMITS"] = limits


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app.

    :param test_config: settings that override defaults and environment; ``BOT`` injects a
        ready (warmed-up) bot, as the tests do.
    :returns: the Flask app; without ``BOT`` it builds one with :func:`bot.runtime.build_bot`
        and loads it as ``WARM_UP`` says.
    :raises ValueError: on a malformed setting.
    """
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.from_mapping(DEFAULTS)
    app.config.update(_env_settings())
    app.config.update(test_config or {})
    if app.config.get("TESTING") and "CONVERSATION_LOG" not in (test_config or {}):
        app.config["CONVERSATION_LOG"] = "off"  # a test keeps a log only where it tests one
    _normalise(app.config)
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    bot = app.config.get("BOT")
    if bot is not None:
        live = LiveBot.serving(bot)
        library = bot.answerer.library
    else:
        from bot.runtime import build_bot

        keys = ("EMBEDDING_MODEL", "LIBRARY_DIR", "INDEX_DIR", "SESSION_TTL", "MAX_SESSIONS", "BOT_BACKEND", "RASA_URL",
                "ENDPOINTS", "REDIS_URL")
        live = LiveBot(build_bot, {k: app.config[k] for k in keys})
        if app.config["WARM_UP"] == "background":
            threading.Thread(target=live.start, kwargs={"raise_errors": False}, name="bot-warm-up", daemon=True).start()
        else:
            live.start()  # the model and the last good index; a missing one is built in the background
        library = _disk_library(app.config["LIBRARY_DIR"], live)
    app.extensions["live_bot"] = live
    app.extensions["library"] = library
    app.extensions["conversation_log"] = _conversation_log(app.config)

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    app.after_request(_headers)
    _routes(app)
    _limit(app)
    return app


def _conversation_log(config):
    """The log the settings ask for, its schema brought up to date; a database that cannot be
    reached is logged and counted, and the bot answers without it."""
    if str(config["CONVERSATION_LOG"]).lower() in ("off", "false", "0", "no", ""):
        return None
    from bot.convlog import ConversationLog, upgrade

    conversation_log = ConversationLog(config["DATABASE_URL"], retention_days=float(config["LOG_RETENTION_DAYS"]))
    try:
        upgrade(conversation_log.url)
    except Exception as exc:  # noqa: BLE001 — down now; rows written later fail and are counted
        conversation_log.failed += 1
        conversation_log.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        log.warning("conversation log: could not prepare the database: %s", conversation_log.last_error)
    return conversation_log


def _limit(app: Flask) -> None:
    """Rate-limit the public POST per client (Flask-Limiter). The client is the connection's
    address, or, behind TRUSTED_PROXIES proxies, the address they put in X-Forwarded-For."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    storage = app.config["RATE_LIMIT_STORAGE"] or app.config["REDIS_URL"] or "memory://"
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage, key_prefix="zhenggai-qa",
                      enabled=bool(app.config["RATE_LIMITS"]),
                      # a storage that fails (Redis down) lets the question through, and is logged
                      swallow_errors=True)
    app.extensions["rate_limiter"] = limiter
    for endpoint in ("webhook", "feedback"):
        app.view_functions[endpoint] = limiter.limit(lambda: current_app.config["RATE_LIMITS"], methods=["POST"])(
            app.view_functions[endpoint])
    app.register_error_handler(RateLimitExceeded, _rate_limited)


def _rate_limited(exc: RateLimitExceeded):
    """429 with the JSON error body, Retry-After, and the notice's own channels for what is urgent."""
    current = current_app.extensions["rate_limiter"].current_limit
    retry = max(1, int(current.reset_at - time.time())) if current is not None else 60
    contact = _contact()
    channels = "，".join(x for x in (f"联系电话 {contact.phone}" if contact.phone else "",
                                     f"电子邮箱 {contact.email}" if contact.email else "") if x)
    message = f"您的提问太频繁了，请稍后再试（约 {retry} 秒后）。" + (f"如有急事，请联系：{channels}。" if channels else "")
    return _error(429, "rate_limited", message, f"Too many requests ({exc.description}); retry after {retry} s.",
                  {"Retry-After": str(retry)})


def _routes(app: Flask) -> None:
    app.add_url_rule("/", "demo", demo)
    app.add_url_rule("/notice", "notice", notice_page)
    app.add_url_rule("/notices", "notices_index", notices_index)
    app.add_url_rule("/notice/<doc>", "notice_doc", notice_page)
    app.add_url_rule("/widget.js", "widget_js", widget_js)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/webhooks/rest/", "rest_status", rest_status)
    app.add_url_rule("/webhooks/rest/webhook", "webhook", webhook, methods=["POST", "OPTIONS"])
    app.add_url_rule("/webhooks/rest/feedback", "feedback", feedback, methods=["POST", "OPTIONS"])


# ---- helpers ------------------------------------------------------------------------------------


def _disk_library(folder, live: LiveBot):
    """The notices for the pages before an index answers: parsed from disk (milliseconds); when
    a notice on disk is broken, those the last good index was built from.

    :raises NoticeParseError: when neither can be had.
    """
    from knowledge.parser import NoticeParseError
    from knowledge.store import load_library

    try:
        return load_library(folder)
    except NoticeParseError:
        live.loaded.wait(timeout=300)
        if live.bot is None:
            raise
        log.exception("a notice on disk is broken: pages show the notices of the last good index")
        return live.bot.retriever.library


def _live() -> LiveBot:
    live = current_app.extensions["live_bot"]
    live.refresh()
    return live


def _library():
    """The notices of the bot answering now (their text is what citations point into), else
    those on disk."""
    bot = current_app.extensions["live_bot"].bot
    return bot.retriever.library if bot is not None else current_app.extensions["library"]


def _is_api(path: str) -> bool:
    return path.startswith(_API_PREFIXES)


def _error(status: int, code: str, message: str, detail: str, headers: dict | None = None,
           extra: dict | None = None) -> Response:
    """The API's error body: a code, a Chinese ``message`` for people, an English ``detail``
    (and ``extra`` fields, for operations)."""
    response = jsonify({"error": code, "message": message, "detail": detail, **(extra or {})})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


_HTTP_MESSAGES = {
    404: ("not_found", "您访问的地址不存在。请检查地址是否正确。"),
    405: ("method_not_allowed", "该地址不支持这种请求方式。"),
    413: ("too_large", "请求内容过大。请缩短您的问题后再试。"),
}


def _http_error(exc: HTTPException):
    if _is_api(request.path):
        code, message = _HTTP_MESSAGES.get(exc.code, ("http_error", "请求无法处理，请稍后再试。"))
        headers = {}
        if exc.code == 405:
            headers["Allow"] = ", ".join(exc.valid_methods or [])
        return _error(exc.code or 500, code, message, f"{exc.code} {exc.name}: {exc.description}", headers)
    return render_template("error.html", status=exc.code, name=exc.name), exc.code


def _internal_error(exc: Exception):
    log.exception("unhandled error on %s", request.path)
    if _is_api(request.path):
        return _error(500, "internal_error", "系统暂时出现问题，请稍后再试。", "Internal server error.")
    return render_template("error.html", status=500, name="Internal Server Error"), 500


def _allowed_origin(origin: str | None) -> str | None:
    if not origin:
        return None
    allowed = current_app.config["ALLOWED_ORIGINS"]
    if "*" in allowed or origin.rstrip("/") in allowed:
        return origin
    return None


def _own_origin(origin: str) -> bool:
    """Whether ``origin`` is this service itself (its demo and notice pages), as the request or
    ``PUBLIC_URL`` names it."""
    origin = origin.rstrip("/")
    public = re.match(r"^https?://[^/]+", current_app.config["PUBLIC_URL"] or "")
    return origin == request.host_url.rstrip("/") or bool(public and origin == public.group())


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if request.path.startswith("/webhooks/"):
        origin = _allowed_origin(request.headers.get("Origin"))
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        response.headers["Cache-Control"] = "no-store"
    return response


def _contact():
    notice = next(iter(_library().notices.values()))
    return notice.contact


def _site_name(meta) -> str:
    name = current_app.config["SITE_NAME"]
    if name:
        return name
    issuer = meta.issuer.removeprefix("中共")
    return issuer.removesuffix("党组") or meta.issuer


def _citation_url(citation: dict) -> str:
    doc = citation.get("doc") or ""
    anchor = citation.get("anchor") or ""
    url = url_for("notice_doc", doc=doc) if doc else url_for("notice")
    spans = citation.get("spans") or []
    pairs = []
    for span in spans[:_MAX_HIGHLIGHTS]:
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        if 0 <= start < end:
            pairs.append(f"{start}-{end}")
    if pairs:
        url += "?hl=" + ",".join(pairs)
    if anchor:
        url += "#" + anchor
    return current_app.config["PUBLIC_URL"] + url


# ---- the webhook --------------------------------------------------------------------------------


def _bad_request(code: str, message: str, detail: str) -> Response:
    return _error(400, code, message, detail)


def webhook():
    """Rasa's REST channel: ``{"sender", "message", "metadata"?}`` in, a list of messages out."""
    if request.method == "OPTIONS":
        return _preflight()
    refused = _foreign_origin()
    if refused is not None:
        return refused
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # "[[[[…]]]]" nested deeper than the parser goes
        body = None
    except HTTPException:  # 413 and the like keep their own status
        raise
    except Exception:  # noqa: BLE001 — a body the server cannot read (a malformed chunk) is the client's
        log.info("unreadable request body on %s", request.path)
        return _bad_request("invalid_body", "请求内容无法读取，请重新发送。", "The request body could not be read.")
    if body is None:
        return _bad_request("invalid_json", "请求内容不是有效的 JSON。", "The request body must be a JSON object.")
    if not isinstance(body, dict):
        return _bad_request("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object, not a list or a scalar.")
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    for field in ("sender", "message"):
        if field not in body:
            name = "发送者标识（sender）" if field == "sender" else "问题内容（message）"
            return _bad_request("missing_field", f"请求缺少{name}。", f"Missing field {field!r}.")
        if not isinstance(body[field], str):
            return _bad_request(
                "wrong_type", f"字段 {field} 应为文本。", f"Field {field!r} must be a string, got {type(body[field]).__name__}."
            )
        if _BAD_CHARS_RE.search(body[field]):
            return _bad_request("invalid_characters", f"字段 {field} 含有无法识别的字符，请删除后再试。",
                                f"Field {field!r} holds a control character or a lone surrogate.")
    sender, message = body["sender"].strip(), body["message"]
    metadata = body.get("metadata")
    if metadata is not None and isinstance(metadata, dict) and not _metadata_ok(metadata):
        return _bad_request("invalid_metadata", "附加信息（metadata）过大、层级过深或含有无法识别的字符。",
                            f"Field 'metadata' must be a small object (at most {_MAX_METADATA_CHARS} characters, "
                            f"{_MAX_METADATA_DEPTH} levels) of plain text.")
    if not sender:
        return _bad_request("empty_sender", "发送者标识（sender）不能为空。", "Field 'sender' must not be empty.")
    if len(sender) > current_app.config["MAX_SENDER_CHARS"]:
        return _bad_request(
            "sender_too_long", "发送者标识（sender）过长。",
            f"Field 'sender' must be at most {current_app.config['MAX_SENDER_CHARS']} characters.",
        )
    if metadata is not None and not isinstance(metadata, dict):
        return _bad_request("wrong_type", "字段 metadata 应为 JSON 对象。", "Field 'metadata' must be an object.")
    if not message.strip():
        return _bad_request("empty_message", "请输入您的问题。", "Field 'message' is empty.")
    if len(message) > limit:
        return _bad_request(
            "message_too_long",
            f"问题最多{limit}个字，您输入了{len(message)}个字。请精简后再发送。",
            f"Field 'message' has {len(message)} characters; the limit is {limit}.",
        )
    live = _live()
    bot = live.bot  # one bot for the whole turn, even if a new index is swapped in meanwhile
    if bot is None:
        return _not_answering(live)
    if message.strip() == "/restart":  # Rasa's reset command; the widget's "new conversation"
        bot.dialogue.reset(sender)
        return jsonify([])
    started = time.perf_counter()
    wants_debug = isinstance(metadata, dict) and bool(metadata.get("debug"))
    conversation_log = current_app.extensions.get("conversation_log")
    try:
        # The debug says why a turn was answered or declined: the log keeps that, in words.
        messages = bot.dialogue.handle(sender, message, metadata, debug=conversation_log is not None or wants_debug)
    except RasaUnavailableError:
        log.exception("the Rasa server did not answer")
        return _error(503, "upstream_unavailable", "咨询服务暂时连接不上，请稍后再试。",
                      "The Rasa server (BOT_BACKEND=rasa) did not answer.", {"Retry-After": "10"})
    out = []
    for msg in messages:
        custom = dict(msg.get("custom") or {})
        custom["citations"] = [dict(c, url=_citation_url(c)) for c in custom.get("citations") or []]
        custom.setdefault("abstained", False)
        custom.setdefault("suggestions", [])
        out.append({"recipient_id": msg.get("recipient_id", sender), "text": msg.get("text", ""), "custom": custom})
    if conversation_log is not None and out:
        out[-1]["custom"]["turn_id"] = _log_turn(conversation_log, bot, sender, message, metadata, out,
                                                 (time.perf_counter() - started) * 1000)
    if not wants_debug:
        for msg in out:
            msg["custom"].pop("debug", None)
    return jsonify(out)


def _log_turn(conversation_log, bot, sender: str, message: str, metadata, out: list[dict], latency_ms: float) -> str:
    """One row of the conversation log for this turn (the question masked, as everywhere)."""
    from bot.convlog import Turn, page_path

    last = out[-1]["custom"]
    debug = last.get("debug") or {}
    turn = debug.get("turn") or {}
    hits = debug.get("hits") or []
    citations = last.get("citations") or []
    metadata = metadata if isinstance(metadata, dict) else {}
    doc = (citations[0].get("doc") if citations else None) or metadata.get("doc")
    row = Turn(
        sender=sender, question=bot.dialogue.masked(message.strip())[:current_app.config["MAX_MESSAGE_CHARS"]],
        answered=not last.get("abstained") and bool(citations or last.get("kind") in ("overview", "chat", "channels")),
        doc=str(doc)[:100] if doc else None, intent=(debug.get("intent") or {}).get("name") or last.get("intent"),
        kind=last.get("kind"), reason=turn.get("decided_by"),
        cited_doc=citations[0].get("doc") if citations else None,
        cited_anchors=[c.get("anchor", "") for c in citations],
        top_score=hits[0].get("fused") if hits else (citations[0].get("score") if citations else None),
        latency_ms=round(latency_ms, 1), page=page_path(metadata.get("page")),
    )
    return conversation_log.record(row)


def feedback():
    """👍/👎 on an answer: ``{"sender", "turn_id"?, "rating": "up"|"down", "reason"?, "comment"?}``
    (``turn_id`` from the answer's ``custom.turn_id``; without it, the sender's last turn)."""
    from bot.convlog import MAX_COMMENT_CHARS, RATINGS, REASONS

    if request.method == "OPTIONS":
        return _preflight()
    refused = _foreign_origin()
    if refused is not None:
        return refused
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _bad_request("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    sender, turn_id, rating = body.get("sender"), body.get("turn_id"), body.get("rating")
    reason, comment = body.get("reason"), body.get("comment")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > current_app.config["MAX_SENDER_CHARS"]:
        return _bad_request("missing_field", "请求缺少有效的发送者标识（sender）。", "Field 'sender' must be a non-empty string.")
    if turn_id is not None and (not isinstance(turn_id, str) or not re.fullmatch(r"[0-9a-f]{32}", turn_id)):
        return _bad_request("invalid_turn_id", "回答编号（turn_id）无效。", "Field 'turn_id' must be the answer's custom.turn_id.")
    if rating not in RATINGS:
        return _bad_request("invalid_rating", "评价（rating）应为 up 或 down。", "Field 'rating' must be 'up' or 'down'.")
    if reason is not None and reason not in REASONS:
        return _bad_request("invalid_reason", f"原因（reason）应为：{'、'.join(REASONS)}。",
                            f"Field 'reason' must be one of {', '.join(REASONS)}.")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS
                                or _BAD_CHARS_RE.search(comment)):
        return _bad_request("invalid_comment", f"补充说明最多{MAX_COMMENT_CHARS}个字。",
                            f"Field 'comment' must be text of at most {MAX_COMMENT_CHARS} characters.")
    conversation_log = current_app.extensions.get("conversation_log")
    if conversation_log is None:
        return _error(503, "feedback_off", "本站未开启评价记录。", "The conversation log is off (CONVERSATION_LOG).")
    bot = _live().bot
    masked = bot.dialogue.masked(comment.strip()) if (comment and bot is not None) else (comment or None)
    conversation_log.feedback(sender.strip(), turn_id, rating, reason, masked or None)
    return jsonify({"ok": True}), 202


def _not_answering(live: LiveBot) -> Response:
    """503 while no index answers: being built (or the model loading), or unusable."""
    contact = _contact()
    reach = f"如需帮助，请拨打{contact.phone}" if contact.phone else "如需帮助，请联系发布通报的单位"
    state = live.status()["state"]
    if state == "starting":
        return _error(503, "starting", f"咨询服务正在启动，请稍候几秒再试。{reach}。",
                      "The model and index are still loading.", {"Retry-After": "5"})
    if state == "building":
        return _error(503, "updating", f"咨询服务正在更新通报内容，约需一两分钟，请稍后再试。{reach}。",
                      "The index is being built; try again shortly.", {"Retry-After": "30"})
    return _error(503, "unavailable", f"咨询服务暂时不可用，请稍后再试。{reach}。", "No usable index; see the server log.",
                  {"Retry-After": "60"})


def _metadata_ok(value, depth: int = 1) -> bool:
    """Whether ``metadata`` is small, shallow and holds only encodable text."""
    import json

    if depth == 1:
        try:
            if len(json.dumps(value, ensure_ascii=False)) > _MAX_METADATA_CHARS:
                return False
        except (TypeError, ValueError, RecursionError):
            return False
    if depth > _MAX_METADATA_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_metadata_ok(k, depth + 1) and _metadata_ok(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_metadata_ok(v, depth + 1) for v in value)
    if isinstance(value, str):
        return not _BAD_CHARS_RE.search(value)
    return True


def _origin_refused() -> Response:
    return _error(403, "origin_not_allowed", "该网站未获授权嵌入本咨询服务。",
                  "This origin is not listed in ALLOWED_ORIGINS.")


def _foreign_origin() -> Response | None:
    """403 for a POST from a site neither allowed nor this service itself: CORS only stops a
    browser from reading the reply, the request would still be carried out."""
    origin = request.headers.get("Origin")
    if origin and not _allowed_origin(origin) and not _own_origin(origin):
        return _origin_refused()
    return None


def _preflight() -> Response:
    origin = _allowed_origin(request.headers.get("Origin"))
    if not origin:
        return _origin_refused()
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


def rest_status():
    """Rasa's REST channel health route."""
    return jsonify({"status": "ok"})


def _may_see_details() -> bool:
    """Operations: a request from this machine (not relayed by a proxy) or with the health token."""
    import hmac

    token = current_app.config["HEALTH_TOKEN"]
    if token and hmac.compare_digest(request.headers.get("X-Health-Token", ""), token):
        return True
    return request.remote_addr in ("127.0.0.1", "::1") and "X-Forwarded-For" not in request.headers


def _conversations(bot) -> dict:
    """Where conversations live and how often that store failed (a turn then lost its context)."""
    sessions = getattr(bot.dialogue, "sessions", None)
    if sessions is None:  # BOT_BACKEND=rasa: Rasa keeps them
        return {}
    body = {"store": sessions.store.describe(), "failures": sessions.failures}
    if sessions.last_error:
        body["last_error"] = sessions.last_error
    return {"conversations": body}


def _log_status() -> dict:
    conversation_log = current_app.extensions.get("conversation_log")
    return {"conversation_log": conversation_log.status()} if conversation_log is not None else {}


def healthz():
    """200 while an index answers (also one of notices changed since, while a new one is built),
    503 while none does; the details only for operations (:func:`_may_see_details`)."""
    live = _live()
    details = _may_see_details()
    bot = live.bot
    if bot is not None and not details:
        return jsonify({"status": "ok"})  # the public poll reads nothing from disk
    status = live.status()
    if bot is not None:
        return jsonify({
            "status": "ok",
            "model": getattr(bot.embedder, "name", ""),
            "notices": len(bot.retriever.library.notices),
            "chunks": len(bot.retriever.chunks),
            "index": status,
            **_conversations(bot),
            **_log_status(),
        })
    if status["state"] == "unavailable":
        if not details:
            return _error(503, "unavailable", "咨询服务暂时不可用，请稍后再试。", "The service is unavailable.")
        # The project's errors read "中文 / English": the operator gets both halves.
        reason = (status.get("build_error") or (status.get("last_build") or {}).get("error") or status.get("error")
                  or "")
        zh, _, en = reason.partition(" / ")
        return _error(503, "unavailable", f"咨询服务加载失败：{zh}" if en else "咨询服务加载失败，请查看服务日志。",
                      en or "The bot failed to load; see the server log.", extra={"index": status})
    word = {"building": "正在更新通报内容", "starting": "正在启动"}[status["state"]]
    body = {"status": status["state"], "message": f"咨询服务{word}。"}
    if details:
        body["seconds"] = round(time.monotonic() - live.started, 1)
        body["index"] = status
    return jsonify(body), 503


# ---- pages --------------------------------------------------------------------------------------


def _parse_highlights(raw: str | None, length: int) -> list[tuple[int, int]]:
    """``?hl=5124-5159,5191-5232`` → sorted, merged spans inside the text; bad pieces are ignored."""
    spans = []
    for piece in (raw or "").split(",")[:_MAX_HIGHLIGHTS]:
        match = _HL_RE.match(piece.strip())
        if not match:
            continue
        start, end = int(match.group(1)), min(int(match.group(2)), length)
        if 0 <= start < end:
            spans.append((start, end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


_BLOCK_KINDS = {"title", "preamble", "part", "topic", "item", "section", "contact", "signature"}


def render_notice(notice, highlights: list[tuple[int, int]]) -> Markup:
    """The notice as HTML: a block per node with its anchor as ``id``, points as inline spans,
    ``highlights`` (absolute offsets) wrapped in ``<mark>``. Every piece of text is escaped."""
    text = notice.text
    out: list[str] = []

    def inline(start: int, end: int, points: list, bold_end: int) -> str:
        cuts = {start, end, bold_end}
        for p in points:
            cuts.update((p.start, p.end))
        for s, e in highlights:
            cuts.update((s, e))
        cuts = sorted(c for c in cuts if start <= c <= end)
        html, open_point, seen = [], None, set()
        for a, b in zip(cuts, cuts[1:]):
            if a >= b:
                continue
            point = next((p for p in points if p.start <= a and b <= p.end), None)
            if point is not open_point:
                if open_point is not None:
                    html.append("</span>")
                if point is not None:
                    ident = "" if point.anchor in seen else f' id="{escape(point.anchor)}"'
                    seen.add(point.anchor)
                    html.append(f'<span class="point"{ident}>')
                open_point = point
            piece = str(escape(text[a:b]))
            if any(s <= a and b <= e for s, e in highlights):
                piece = f"<mark>{piece}</mark>"
            if b <= bold_end:
                piece = f'<strong class="head">{piece}</strong>'
            html.append(piece)
        if open_point is not None:
            html.append("</span>")
        return "".join(html).replace("</mark><mark>", "")

    def lines(node, start: int, end: int, first_line_tag: str | None) -> None:
        points = [c for c in node.children if c.kind == "point"] if node is not None else []
        bold_end = node.body_start if node is not None and node.kind == "item" else start
        pos = start
        for raw in text[start:end].splitlines(keepends=True):
            s, e = pos, pos + len(raw.rstrip("\r\n"))
            pos += len(raw)
            body = text[s:e]
            if not body.strip():
                continue
            s += len(body) - len(body.lstrip())
            e -= len(body) - len(body.rstrip())
            tag = first_line_tag or "p"
            first_line_tag = None
            out.append(f"<{tag}>{inline(s, e, points, bold_end)}</{tag}>")

    heading_tags = {"part": "h2", "topic": "h3", "section": "h3"}

    def block(node) -> None:
        kind = node.kind
        out.append(f'<div class="node {kind}" id="{escape(node.anchor)}" tabindex="-1">')
        pos, first = node.start, heading_tags.get(kind)
        for child in node.children:
            if child.kind not in _BLOCK_KINDS:
                continue
            lines(node, pos, child.start, first)
            first = None
            block(child)
            pos = child.end
        lines(node, pos, node.end, first)
        out.append("</div>")

    titles = [n for n in notice.nodes if n.kind == "title"]
    if titles:
        out.append('<h1 class="notice-title">')
        out.append("<br>".join(f'<span id="{escape(t.anchor)}">{escape(t.text.strip())}</span>' for t in titles))
        out.append("</h1>")
    for node in notice.nodes:
        if node.kind != "title":
            block(node)
    return Markup("".join(out))


def notice_page(doc: str | None = None):
    """The whole notice, an anchor per node; ``?hl=s-e,…`` marks the quoted sentences."""
    library = _library()
    if doc is None:
        doc = next(iter(library.notices))
    notice = library.notices.get(doc)
    if notice is None:
        raise NotFound(f"no notice {doc!r}")
    meta = library.meta[doc]
    highlights = _parse_highlights(request.args.get("hl"), len(notice.text))
    return render_template(
        "notice.html", meta=meta, body=render_notice(notice, highlights), contact=notice.contact,
        marked=bool(highlights), site_name=_site_name(meta),
    )


def demo():
    """A bureau's news page carrying the widget, as citizens will see it (``?doc=`` chooses which
    notice's page; the widget on it answers about that notice first)."""
    library = _library()
    doc = request.args.get("doc") or next(iter(library.notices))
    if doc not in library.notices:
        raise NotFound(f"no notice {doc!r}")
    notice, meta = library.notices[doc], library.meta[doc]
    preamble = notice.find("preamble")
    others = [m for d, m in library.meta.items() if d != doc]
    return render_template(
        "demo.html", meta=meta, site_name=_site_name(meta), contact=notice.contact,
        preamble=preamble.text.strip() if preamble else "", topics=notice.topics() or notice.items(),
        notice_url=url_for("notice_doc", doc=meta.doc), others=others,
        example=(_welcome(doc) or ["整改了哪些方面？"])[0],
    )


def notices_index():
    """Every notice the site publishes, newest first, with its issuer, date and comment period."""
    library = _library()
    metas = sorted(library.meta.values(), key=lambda m: m.date, reverse=True)
    first = library.notices[metas[0].doc]
    return render_template("notices.html", metas=metas, site_name=_site_name(metas[0]), contact=first.contact)


def _welcome(doc: str) -> list[str]:
    bot = current_app.extensions["live_bot"].bot
    return list(bot.answerer.welcome_suggestions(doc)) if bot is not None else []


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
    library = _library()
    bot = current_app.extensions["live_bot"].bot
    notices = {doc: _widget_notice(doc, bot) for doc in library.notices}
    config = {
        "title": "整改通报问答",
        "maxChars": current_app.config["MAX_MESSAGE_CHARS"],
        "webhook": url_for("webhook"),
        "feedback": url_for("feedback"),
        "notices": notices,
    }
    if len(notices) == 1:
        config.update(next(iter(notices.values())))
    else:
        titles = "、".join(meta.full_title for meta in library.meta.values())
        config.update(welcome=f"您好！我可以根据本站公开的整改通报（{titles}）回答您的问题，每条回答都注明出处。请问您想了解什么？",
                      suggestions=(list(bot.answerer.welcome_suggestions()) if bot is not None else [])[:6],
                      noticeUrl=url_for("notices_index"))
    return config


def _widget_notice(doc: str, bot) -> dict:
    library = _library()
    notice, meta = library.notices[doc], library.meta[doc]
    suggestions = list(bot.answerer.welcome_suggestions(doc)) if bot is not None else []
    return {
        "welcome": f"您好！我可以根据{meta.full_title}回答您的问题，每条回答都注明出处。请问您想了解什么？",
        "suggestions": suggestions[:6],
        "phone": notice.contact.phone,
        "email": notice.contact.email,
        "noticeTitle": meta.full_title,
        "noticeUrl": url_for("notice_doc", doc=doc),
    }


def widget_js():
    """The embed: one script, no external resources; its settings are written into it."""
    config = htmlsafe_json_dumps(widget_config(), ensure_ascii=False)
    source = _widget_source().replace("/*__WIDGET_CONFIG__*/{}", str(config), 1)
    response = Response(source, mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public script, like any CDN file
    return response


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, announcing no versions (``Server: zhenggai-qa``, not Werkzeug's
    and Python's); gunicorn names itself without one."""

    server_version = "zhenggai-qa"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version


def main() -> None:
    """``python server.py``: serve on HOST:PORT at once, loading the bot in the background."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app({"WARM_UP": os.environ.get("WARM_UP") or "background"})
    host, port = app.config["HOST"], app.config["PORT"]
    log.info("serving on http://%s:%s (the bot answers once /healthz says ok)", host, port)
    app.run(host=host, port=port, threaded=True, use_reloader=False, request_handler=QuietRequestHandler)


if __name__ == "__main__":
    main()
