"""The app factory of the web front end: Rasa's REST webhook, the notice pages, the embeddable
widget, a demo page and the staff console, each a blueprint in ``web/``.

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

from flask import Flask, Response, current_app, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

from bot.live import LiveBot
from web.common import allowed_origin, error, first_contact

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
    # The staff console's session cookie is signed with SECRET_KEY (or the key in SECRET_KEY_FILE;
    # make serve writes one under var/). Without either, `python server.py` makes one per start
    # (sign-ins last until a restart) and a production server (gunicorn) refuses to start.
    "SECRET_KEY": None,
    "SECRET_KEY_FILE": None,
    # Send the staff session cookie over HTTPS only (set it behind TLS).
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    # Failed staff sign-ins allowed, per account and per client (then 429).
    "STAFF_SIGNIN_PER_ACCOUNT": "5 per 15 minutes",
    "STAFF_SIGNIN_PER_CLIENT": "20 per 15 minutes",
}
_INT_KEYS = ("PORT", "MAX_MESSAGE_CHARS", "MAX_SENDER_CHARS", "MAX_CONTENT_LENGTH", "MAX_SESSIONS", "TRUSTED_PROXIES",
             "PERMANENT_SESSION_LIFETIME")
_API_PREFIXES = ("/webhooks/", "/healthz", "/api/", "/staff/api/")

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
    secure = config["SESSION_COOKIE_SECURE"]
    config["SESSION_COOKIE_SECURE"] = secure if isinstance(secure, bool) else str(secure).lower() in ("1", "true", "yes", "on")
    config["SESSION_COOKIE_HTTPONLY"] = True
    for key in ("STAFF_SIGNIN_PER_ACCOUNT", "STAFF_SIGNIN_PER_CLIENT"):
        try:
            parse_many(str(config[key]))
        except ValueError:
            raise ValueError(f"{key} looks like '5 per 15 minutes', got {config[key]!r}") from None


def _secret_key(config: dict) -> None:
    """SECRET_KEY, from the setting or SECRET_KEY_FILE; a key made for this start when neither is
    there and the server is not a production one.

    :raises ValueError: a production server with no key, or a key file that cannot be read.
    """
    if config.get("SECRET_KEY"):
        return
    path = config.get("SECRET_KEY_FILE")
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"SECRET_KEY_FILE {path} 无法读取 / cannot be read: {exc}") from None
        if len(key) < 32:
            raise ValueError(f"SECRET_KEY_FILE {path} 中的密钥太短（至少 32 个字符） / the key is too short (32+ characters)")
        config["SECRET_KEY"] = key
        return
    if config.get("TESTING") or config["WARM_UP"] == "background":
        import secrets

        config["SECRET_KEY"] = secrets.token_urlsafe(32)
        log.warning("no SECRET_KEY: staff sign-ins last until this server restarts")
        return
    raise ValueError("未设置 SECRET_KEY：工作人员后台的登录需要它。请设置环境变量 SECRET_KEY 或 SECRET_KEY_FILE"
                     "（make serve 会在 var/secret_key 生成一个）。 / SECRET_KEY is not set: the staff console's "
                     "sign-in needs it. Set SECRET_KEY or SECRET_KEY_FILE (make serve writes var/secret_key).")


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
    _secret_key(app.config)
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
    for endpoint in ("api.webhook", "api.feedback"):
        app.view_functions[endpoint] = limiter.limit(lambda: current_app.config["RATE_LIMITS"], methods=["POST"])(
            app.view_functions[endpoint])
    app.register_error_handler(RateLimitExceeded, _rate_limited)


def _rate_limited(exc: RateLimitExceeded):
    """429 with the JSON error body, Retry-After, and the notice's own channels for what is urgent."""
    current = current_app.extensions["rate_limiter"].current_limit
    retry = max(1, int(current.reset_at - time.time())) if current is not None else 60
    contact = first_contact()
    channels = "，".join(x for x in (f"联系电话 {contact.phone}" if contact.phone else "",
                                     f"电子邮箱 {contact.email}" if contact.email else "") if x)
    message = f"您的提问太频繁了，请稍后再试（约 {retry} 秒后）。" + (f"如有急事，请联系：{channels}。" if channels else "")
    return error(429, "rate_limited", message, f"Too many requests ({exc.description}); retry after {retry} s.",
                 {"Retry-After": str(retry)})


def _routes(app: Flask) -> None:
    from web import api, pages, staff, widget

    for blueprint in (pages.bp, widget.bp, api.bp, staff.bp):
        app.register_blueprint(blueprint)


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


def _is_api(path: str) -> bool:
    return path.startswith(_API_PREFIXES)


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
        return error(exc.code or 500, code, message, f"{exc.code} {exc.name}: {exc.description}", headers)
    return render_template("error.html", status=exc.code, name=exc.name), exc.code


def _internal_error(exc: Exception):
    log.exception("unhandled error on %s", request.path)
    if _is_api(request.path):
        return error(500, "internal_error", "系统暂时出现问题，请稍后再试。", "Internal server error.")
    return render_template("error.html", status=500, name="Internal Server Error"), 500


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if request.path.startswith("/webhooks/"):
        origin = allowed_origin(request.headers.get("Origin"))
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        response.headers["Cache-Control"] = "no-store"
    return response


# ---- the webhook --------------------------------------------------------------------------------


# ---- pages --------------------------------------------------------------------------------------


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
