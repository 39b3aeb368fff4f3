"""The staff console (``/staff/``) and its JSON API (``/staff/api/``): sign in, try answers with a
plain-Chinese explanation, review what citizens asked, teach the bot in one click, add a notice.

Staff accounts and labels live in the conversation log's database (``bot/staff.py``); the turns
are read back from the log (``bot/review.py``). A label is written into the notice's labelled
questions and a new index is built in the background; every worker answers with it once it is
there, without a restart. Every state-changing request carries the session's CSRF token in
``X-CSRFToken``; sign-ins that fail are throttled per account and per client; nothing here is
cached by a browser or a proxy.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hmac
import io
import logging
import re
import secrets
import threading
from functools import wraps

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, session, url_for
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from web.common import BAD_CHARS_RE, current_library, error, live_bot, not_answering

log = logging.getLogger("server")
bp = Blueprint("staff", __name__, url_prefix="/staff")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DOC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,80}$")
_ANCHOR_RE = re.compile(r"^[a-z0-9-]{1,60}$")
_MAX_NOTICE_CHARS = 200_000


# ---- the stores, made on first use --------------------------------------------------------------


class _Stores:
    """The console's database objects, for this app: accounts, labels, the turns."""

    def __init__(self, url: str, library_dir) -> None:
        from bot.convlog import DEFAULT_URL, upgrade
        from bot.review import TurnBrowser
        from bot.staff import LabelBook, StaffAccounts
        from knowledge.store import questions_path

        url = url or DEFAULT_URL
        upgrade(url)
        self.accounts = StaffAccounts(url)
        self.labels = LabelBook(url, lambda doc: questions_path(library_dir, doc))
        self.turns = TurnBrowser(url)


_STORES_LOCK = threading.Lock()


def stores() -> _Stores:
    """This app's stores, made once per process: the page's first requests come together, and
    two threads migrating one SQLite file at once would lock each other out."""
    made = current_app.extensions.get("staff")
    if made is None:
        with _STORES_LOCK:
            made = current_app.extensions.get("staff")
            if made is None:
                made = _Stores(current_app.config["DATABASE_URL"], current_app.config["LIBRARY_DIR"])
                current_app.extensions["staff"] = made
    return made


def _throttle():
    """Sign-in attempts, counted where the rate limits are (Redis across workers when set), even
    when the public limits are off."""
    limiter = current_app.extensions.get("staff_throttle")
    if limiter is None:
        config = current_app.config
        storage = storage_from_string(config["RATE_LIMIT_STORAGE"] or config["REDIS_URL"] or "memory://")
        limiter = (MovingWindowRateLimiter(storage), parse(current_app.config["STAFF_SIGNIN_PER_ACCOUNT"]),
                   parse(current_app.config["STAFF_SIGNIN_PER_CLIENT"]))
        current_app.extensions["staff_throttle"] = limiter
    return limiter


# ---- guards --------------------------------------------------------------------------------------


def _signed_in() -> str | None:
    name = session.get("staff")
    return name if isinstance(name, str) and name else None


def _need_session(view):
    """Every API route: 401 JSON without a session; a state change also needs the CSRF token."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if _signed_in() is None:
            return error(401, "not_signed_in", "请先登录工作人员后台。", "Sign in first (POST /staff/api/login).")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok():
            return error(403, "csrf_failed", "页面已过期，请刷新后再试。",
                         "Missing or wrong X-CSRFToken header (the csrf_token of the sign-in).")
        return view(*args, **kwargs)

    return guarded


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRFToken", "")
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(given, expected)


@bp.before_request
def _room_for_a_notice() -> None:
    """A notice's text is larger than a question: its upload may send up to 1 MB."""
    if request.endpoint in ("staff.api_notice_preview", "staff.api_notice_add"):
        request.max_content_length = 1024 * 1024


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


def _body() -> dict | None:
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def _bad(code: str, message: str, detail: str, status: int = 400) -> Response:
    return error(status, code, message, detail)


# ---- pages ---------------------------------------------------------------------------------------


@bp.get("/")
def console():
    if _signed_in() is None:
        return redirect(url_for("staff.sign_in"))
    from knowledge.fields import field_names, load_field

    notices = [{"doc": m.doc, "title": m.full_title} for m in current_library().meta.values()]
    fields = [{"name": name, "title": load_field(name).title or name} for name in field_names()]
    return render_template("staff.html", staff=_signed_in(), notices=notices, fields=fields)


@bp.get("/login")
def sign_in():
    return render_template("staff_login.html")


# ---- the API -------------------------------------------------------------------------------------


@bp.post("/api/login")
def api_login():
    body = _body()
    if body is None:
        return _bad("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name.strip() or not password:
        return _bad("missing_field", "请输入账号和密码。", "Fields 'username' and 'password' are required.")
    name = name.strip()[:64]
    limiter, per_account, per_client = _throttle()
    keys = (("account", name), ("client", request.remote_addr or "-"))
    for (kind, key), limit in zip(keys, (per_account, per_client)):
        if not limiter.test(limit, "staff-signin", kind, key):
            return error(429, "signin_throttled", "登录失败次数过多，请 15 分钟后再试。",
                         f"Too many failed sign-ins for this {kind}; wait and try again.", {"Retry-After": "900"})
    if not stores().accounts.check(name, password):
        for (kind, key), limit in zip(keys, (per_account, per_client)):
            limiter.hit(limit, "staff-signin", kind, key)
        log.warning("staff sign-in failed for %r from %s", name, request.remote_addr)
        return error(401, "bad_credentials", "账号或密码不正确。", "Wrong username or password.")
    session.clear()
    session.permanent = True
    session["staff"] = name
    session["csrf"] = secrets.token_urlsafe(32)
    return jsonify({"ok": True, "username": name, "csrf_token": session["csrf"]})


@bp.post("/api/logout")
@_need_session
def api_logout():
    session.clear()
    return jsonify({"ok": True})


@bp.get("/api/session")
@_need_session
def api_session():
    """Who is signed in, and the CSRF token (the console page reads it once)."""
    return jsonify({"username": _signed_in(), "csrf_token": session.get("csrf")})


@bp.post("/api/try")
@_need_session
def api_try():
    """Ask as a citizen would: the widget's exact reply, and why, in plain Chinese."""
    from bot.explain import explain
    from web.api import shape_messages

    body = _body()
    if body is None:
        return _bad("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    message, sender, doc = body.get("message"), body.get("sender") or "console", body.get("doc")
    if not isinstance(message, str) or not message.strip():
        return _bad("empty_message", "请输入要试问的问题。", "Field 'message' must be non-empty text.")
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if len(message) > limit or BAD_CHARS_RE.search(message):
        return _bad("message_too_long", f"问题最多{limit}个字，且不能含有无法识别的字符。",
                    f"Field 'message' must be at most {limit} characters of plain text.")
    if not isinstance(sender, str) or len(sender) > 64 or (doc is not None and not isinstance(doc, str)):
        return _bad("wrong_type", "字段 sender、doc 应为文本。", "Fields 'sender' and 'doc' must be strings.")
    live = live_bot()
    bot = live.bot
    if bot is None:
        return not_answering(live)
    # the console's own conversations, apart from citizens' and never in the log
    key = f"staff:{_signed_in()}:{sender}"
    if message.strip() == "/restart":
        bot.dialogue.reset(key)
        return jsonify({"messages": [], "explanation": None})
    messages = shape_messages(bot.dialogue.handle(key, message, {"doc": doc} if doc else None, debug=True), key)
    last = messages[-1] if messages else {"custom": {}}
    explanation = explain(last, message, bot.retriever.library)
    details = {m_key: last["custom"].get("debug", {}).get(m_key)
               for m_key in ("intent", "nearest", "turn", "features", "hits")}
    for msg in messages:
        msg["custom"].pop("debug", None)
    return jsonify({"messages": messages, "explanation": explanation, "details": details})


def _filter():
    """The turn filter of the query string, or a 400 response."""
    from bot.review import TurnFilter

    args = request.args
    dates = {}
    for key in ("since", "until"):
        value = args.get(key) or ""
        if value:
            if not _DATE_RE.match(value):
                return _bad("invalid_date", "日期应为 YYYY-MM-DD。", f"'{key}' must be YYYY-MM-DD.")
            try:
                dates[key] = _dt.date.fromisoformat(value)
            except ValueError:
                return _bad("invalid_date", "日期不存在。", f"'{key}' is not a date.")
    doc = args.get("doc") or None
    if doc is not None and not _DOC_RE.match(doc):
        return _bad("invalid_doc", "通报编号无效。", "'doc' is not a notice id.")
    text = (args.get("q") or "").strip()[:100] or None
    flag = lambda k: args.get(k) in ("1", "true", "on")  # noqa: E731
    return TurnFilter(declined=flag("declined"), down=flag("down"), low=flag("low"), doc=doc, text=text, **dates)


@bp.get("/api/turns")
@_need_session
def api_turns():
    where = _filter()
    if isinstance(where, Response):
        return where
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        return _bad("invalid_page", "页码应为数字。", "'page' and 'per_page' must be integers.")
    return jsonify(stores().turns.page(where, page, per_page))


@bp.get("/api/turns.csv")
@_need_session
def api_turns_csv():
    where = _filter()
    if isinstance(where, Response):
        return where
    columns = ("at", "doc", "question", "answered", "intent", "reason", "cited_doc", "cited_anchors",
               "p_out_of_scope", "rating", "feedback_reason", "feedback_comment")

    found = stores().turns.all(where)

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # a spreadsheet opens it as UTF-8
        writer.writerow(columns)
        yield buffer.getvalue()
        for row in found:
            buffer = io.StringIO()
            csv.writer(buffer).writerow([_cell(row.get(c)) for c in columns])
            yield buffer.getvalue()

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d")
    return Response(rows(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="questions-{stamp}.csv"'})


def _cell(value):
    """A CSV cell that a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@bp.get("/api/chart.svg")
@_need_session
def api_chart():
    """Questions per day over the last 30 days, with the share declined and 👎, as SVG."""
    from web.chart import daily_chart

    where = _filter()
    if isinstance(where, Response):
        return where
    return Response(daily_chart(stores().turns.per_day(30, where.doc)), mimetype="image/svg+xml")


@bp.get("/api/days")
@_need_session
def api_days():
    where = _filter()
    if isinstance(where, Response):
        return where
    return jsonify(stores().turns.per_day(30, where.doc))


@bp.get("/api/notices")
@_need_session
def api_notices():
    """The notices with their figures: questions asked, share declined, share 👎, items asked most."""
    library = current_library()
    figures = stores().turns.figures(list(library.meta))
    out = []
    for doc, meta in library.meta.items():
        notice = library.notices[doc]
        top = []
        for entry in figures[doc]["top_items"]:
            node = notice.find(entry["anchor"])
            top.append({**entry, "label": _node_name(node) if node is not None else entry["anchor"]})
        out.append({"doc": doc, "title": meta.full_title, "issuer": meta.issuer, "date": meta.date,
                    "period": f"{meta.period_start} 至 {meta.period_end}", **figures[doc], "top_items": top})
    return jsonify(out)


@bp.get("/api/items")
@_need_session
def api_items():
    """The passages of a notice to label with: each item's heading and first sentence."""
    library = current_library()
    doc = request.args.get("doc") or next(iter(library.notices))
    notice = library.notices.get(doc)
    if notice is None:
        return _bad("unknown_doc", "没有这份通报。", f"No notice {doc!r}.", 404)
    return jsonify([{"anchor": n.anchor, "label": _node_name(n), "first": _first_sentence(n)}
                    for n in _passages(notice)])


@bp.get("/api/pending")
@_need_session
def api_pending():
    """待处理: declined, 👎 and unsure questions not labelled yet, near-duplicates grouped."""
    from bot.review import group_questions
    from bot.staff import question_key

    live = live_bot()
    bot = live.bot
    if bot is None:
        return not_answering(live)
    doc = request.args.get("doc") or None
    library = bot.retriever.library
    s = stores()
    labelled = {d: s.labels.labelled(d) for d in library.notices}
    rows = [r for r in s.turns.to_teach(doc)
            if question_key(r["question"]) not in labelled.get(r.get("cited_doc") or r.get("doc") or "", set())
            and r.get("intent") not in ("greet", "goodbye", "thank", "affirm", "chitchat", "bot_challenge")]

    def embed(text):
        return bot.retriever.query_vector(text)

    groups = group_questions(rows, embed)
    first = next(iter(library.notices))
    for group in groups:
        group["doc"] = group["doc"] if group["doc"] in library.notices else first
    return jsonify({"groups": groups})


@bp.get("/api/labels")
@_need_session
def api_labels():
    return jsonify([label.to_dict() for label in stores().labels.recent(50, request.args.get("doc") or None)])


@bp.post("/api/labels")
@_need_session
def api_label():
    """``{"question", "doc", "anchor" (or "-"), "replace"?}`` → 201; 409 when it is labelled
    otherwise already (send ``replace: true`` to change it)."""
    from bot.staff import MAX_QUESTION_CHARS, NOT_COVERED, LabelConflict

    body = _body()
    if body is None:
        return _bad("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    question, doc, anchor = body.get("question"), body.get("doc"), body.get("anchor")
    if not all(isinstance(v, str) for v in (question, doc, anchor)) or not question.strip():
        return _bad("missing_field", "请求缺少问题、通报或答案位置。", "Fields 'question', 'doc' and 'anchor' are required.")
    if len(question) > MAX_QUESTION_CHARS or BAD_CHARS_RE.search(question) or "\t" in question:
        return _bad("invalid_question", "问题过长或含有无法识别的字符。", "Field 'question' is too long or holds control characters.")
    live = live_bot()
    library = current_library()
    notice = library.notices.get(doc)
    if notice is None:
        return _bad("unknown_doc", "没有这份通报。", f"No notice {doc!r}.", 404)
    if anchor != NOT_COVERED and (not _ANCHOR_RE.match(anchor) or notice.find(anchor) is None):
        return _bad("unknown_anchor", "通报里没有这个位置，请从列表中选择。", f"Notice {doc!r} has no passage {anchor!r}.")
    masked = live.bot.dialogue.masked(question) if live.bot is not None else question
    try:
        label = stores().labels.add(doc, masked, anchor, _signed_in(), replace=bool(body.get("replace")))
    except LabelConflict as conflict:
        earlier = conflict.earlier
        node = notice.find(earlier["anchor"]) if earlier["anchor"] != NOT_COVERED else None
        said = "通报未涉及" if earlier["anchor"] == NOT_COVERED else (_node_name(node) if node else earlier["anchor"])
        message = ("这个问题已经这样标注过了。" if earlier.get("same")
                   else f"这个问题之前标注为“{said}”，与这次不同。如确认要改，请选择“改为这次的标注”。")
        return error(409, "label_conflict", message, "The question is labelled already; send replace: true to change it.",
                     extra={"earlier": {**earlier, "label": said}})
    # This worker answers with the label at once, every other within seconds (bot/live.py); the
    # index built in the background keeps it across restarts.
    live.relabel_now()
    building = live.request_build()
    return jsonify({"label": label.to_dict(), "rebuilding": building}), 201


@bp.delete("/api/labels/<int:label_id>")
@_need_session
def api_unlabel(label_id: int):
    label = stores().labels.undo(label_id, _signed_in())
    if label is None:
        return _bad("unknown_label", "没有这条标注，或已撤销。", f"No label {label_id} in force.", 404)
    live = live_bot()
    live.relabel_now()
    building = live.request_build()
    return jsonify({"label": label.to_dict(), "rebuilding": building})


_NOTICE_FIELDS = ("doc", "title", "issuer", "date", "period_start", "period_end")


def _notice_request():
    """(text, meta) of an upload, or a 400 response."""
    from knowledge.fields import field_names

    body = _body()
    if body is None:
        return _bad("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > _MAX_NOTICE_CHARS:
        return _bad("invalid_text", f"请粘贴通报全文（最多 {_MAX_NOTICE_CHARS} 字）。", "Field 'text' must be the notice's text.")
    meta = {}
    for key in _NOTICE_FIELDS:
        value = body.get(key)
        if not isinstance(value, str) or not value.strip() or BAD_CHARS_RE.search(value):
            return _bad("missing_field", "请填写通报编号、标题、发布单位、日期和公示期。", f"Field {key!r} is required text.")
        meta[key] = value.strip()
    for key in ("date", "period_start", "period_end"):
        if not _DATE_RE.match(meta[key]):
            return _bad("invalid_date", "日期应为 YYYY-MM-DD。", f"Field {key!r} must be YYYY-MM-DD.")
    area = body.get("area") or []
    if isinstance(area, str):
        area = [a for a in re.split(r"[,，、\s]+", area) if a]
    if not isinstance(area, list) or not all(isinstance(a, str) for a in area):
        return _bad("wrong_type", "所辖地区应为文本。", "Field 'area' must be a list of names.")
    meta["area"] = area[:50]
    field = body.get("field") or None  # none: the vocabulary every notice shares
    if field is not None and (not isinstance(field, str) or field not in field_names()):
        return _bad("unknown_field", "请从列表中选择通报所属领域。",
                    f"Field 'field' must be one of {', '.join(field_names())} or empty.")
    meta["field"] = field
    return text.replace("\r\n", "\n"), meta


@bp.post("/api/notices/preview")
@_need_session
def api_notice_preview():
    """The structure the parser reads of an upload, with warnings, before anything is written."""
    from knowledge.parser import NoticeParseError, parse_notice
    from knowledge.store import describe

    got = _notice_request()
    if isinstance(got, Response):
        return got
    text, meta = got
    if not _DOC_RE.match(meta["doc"]):
        return _bad("invalid_doc", "通报编号只能由字母、数字、- 和 _ 组成。", "doc must be letters, digits, - or _.")
    try:
        lines, warnings = describe(parse_notice(text, meta["doc"]))
    except NoticeParseError as exc:
        return _bad("unreadable_notice", f"无法读取这份通报：{str(exc).split(' / ')[0]}", str(exc))
    return jsonify({"structure": lines, "warnings": warnings})


@bp.post("/api/notices")
@_need_session
def api_notice_add():
    """Add the notice to the library and build the index in the background: it is answered once
    the build is done, in every worker."""
    from knowledge.parser import NoticeParseError
    from knowledge.store import NOTICES_DIR, write_notice

    got = _notice_request()
    if isinstance(got, Response):
        return got
    text, meta = got
    meta["source"] = f"staff console, {_signed_in()}"
    try:
        write_notice(current_app.config["LIBRARY_DIR"] or NOTICES_DIR, text, meta)
    except NoticeParseError as exc:
        return _bad("unreadable_notice", f"无法添加：{str(exc).split(' / ')[0]}", str(exc))
    building = live_bot().request_build()
    log.info("staff %s added notice %s", _signed_in(), meta["doc"])
    return jsonify({"doc": meta["doc"], "rebuilding": building}), 201


# ---- helpers -------------------------------------------------------------------------------------


def _passages(notice):
    """The passages a question can be labelled with, in reading order: the preamble, the
    points of part 一, every item, the sections, the contact."""
    out = []
    for node in notice.walk():
        if node.kind in ("preamble", "item", "section", "contact") or (node.kind == "point" and not node.anchor.startswith("item-")):
            out.append(node)
    return out


def _node_name(node) -> str:
    if node.kind == "item":
        return f"第{node.number}条 {node.heading}"
    return {"preamble": "前言", "contact": "联系方式"}.get(node.kind, node.heading or node.anchor)


def _first_sentence(node) -> str:
    body = node.text[getattr(node, "body_start", node.start) - node.start:] if node.kind == "item" else node.text
    match = re.search(r"[^。！？；\n]{4,}[。！？；]?", body.strip())
    return (match.group(0) if match else body.strip())[:80]
