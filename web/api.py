"""Rasa's REST channel (``/webhooks/rest/webhook``), the 👍/👎 feedback beside it, and the health
route: the public API, with its CORS and error contract."""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from bot.remote import RasaUnavailableError
from web.common import BAD_CHARS_RE, MAX_HIGHLIGHTS, allowed_origin, bad_request, error, live_bot, not_answering

log = logging.getLogger("server")
bp = Blueprint("api", __name__)

# metadata: a small, flat object (the widget sends the page and the notice).
_MAX_METADATA_CHARS = 2048

_MAX_METADATA_DEPTH = 3


def _citation_url(citation: dict) -> str:
    doc = citation.get("doc") or ""
    anchor = citation.get("anchor") or ""
    url = url_for("pages.notice_doc", doc=doc) if doc else url_for("pages.notice")
    spans = citation.get("spans") or []
    pairs = []
    for span in spans[:MAX_HIGHLIGHTS]:
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
        return bad_request("invalid_body", "请求内容无法读取，请重新发送。", "The request body could not be read.")
    if body is None:
        return bad_request("invalid_json", "请求内容不是有效的 JSON。", "The request body must be a JSON object.")
    if not isinstance(body, dict):
        return bad_request("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object, not a list or a scalar.")
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    for field in ("sender", "message"):
        if field not in body:
            name = "发送者标识（sender）" if field == "sender" else "问题内容（message）"
            return bad_request("missing_field", f"请求缺少{name}。", f"Missing field {field!r}.")
        if not isinstance(body[field], str):
            return bad_request(
                "wrong_type", f"字段 {field} 应为文本。", f"Field {field!r} must be a string, got {type(body[field]).__name__}."
            )
        if BAD_CHARS_RE.search(body[field]):
            return bad_request("invalid_characters", f"字段 {field} 含有无法识别的字符，请删除后再试。",
                                f"Field {field!r} holds a control character or a lone surrogate.")
    sender, message = body["sender"].strip(), body["message"]
    metadata = body.get("metadata")
    if metadata is not None and isinstance(metadata, dict) and not _metadata_ok(metadata):
        return bad_request("invalid_metadata", "附加信息（metadata）过大、层级过深或含有无法识别的字符。",
                            f"Field 'metadata' must be a small object (at most {_MAX_METADATA_CHARS} characters, "
                            f"{_MAX_METADATA_DEPTH} levels) of plain text.")
    if not sender:
        return bad_request("empty_sender", "发送者标识（sender）不能为空。", "Field 'sender' must not be empty.")
    if len(sender) > current_app.config["MAX_SENDER_CHARS"]:
        return bad_request(
            "sender_too_long", "发送者标识（sender）过长。",
            f"Field 'sender' must be at most {current_app.config['MAX_SENDER_CHARS']} characters.",
        )
    if metadata is not None and not isinstance(metadata, dict):
        return bad_request("wrong_type", "字段 metadata 应为 JSON 对象。", "Field 'metadata' must be an object.")
    if not message.strip():
        return bad_request("empty_message", "请输入您的问题。", "Field 'message' is empty.")
    if len(message) > limit:
        return bad_request(
            "message_too_long",
            f"问题最多{limit}个字，您输入了{len(message)}个字。请精简后再发送。",
            f"Field 'message' has {len(message)} characters; the limit is {limit}.",
        )
    live = live_bot()
    bot = live.bot  # one bot for the whole turn, even if a new index is swapped in meanwhile
    if bot is None:
        return not_answering(live)
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
        return error(503, "upstream_unavailable", "咨询服务暂时连接不上，请稍后再试。",
                     "The Rasa server (BOT_BACKEND=rasa) did not answer.", {"Retry-After": "10"})
    out = shape_messages(messages, sender)
    if conversation_log is not None and out:
        out[-1]["custom"]["turn_id"] = _log_turn(conversation_log, bot, sender, message, metadata, out,
                                                 (time.perf_counter() - started) * 1000)
    if not wants_debug:
        for msg in out:
            msg["custom"].pop("debug", None)
    return jsonify(out)


def shape_messages(messages: list[dict], sender: str) -> list[dict]:
    """The dialogue's messages as the REST channel sends them: each citation with the link that
    opens its notice at the passage, ``abstained`` and ``suggestions`` always there."""
    out = []
    for msg in messages:
        custom = dict(msg.get("custom") or {})
        custom["citations"] = [dict(c, url=_citation_url(c)) for c in custom.get("citations") or []]
        custom.setdefault("abstained", False)
        custom.setdefault("suggestions", [])
        out.append({"recipient_id": msg.get("recipient_id", sender), "text": msg.get("text", ""), "custom": custom})
    return out


def _log_turn(conversation_log, bot, sender: str, message: str, metadata, out: list[dict], latency_ms: float) -> str:
    """One row of the conversation log for this turn (the question masked, as everywhere)."""
    from bot.convlog import Turn, page_path

    last = out[-1]["custom"]
    debug = last.get("debug") or {}
    turn = debug.get("turn") or {}
    hits = debug.get("hits") or []
    citations = last.get("citations") or []
    metadata = metadata if isinstance(metadata, dict) else {}
    notices = bot.retriever.library.notices
    doc = ((citations[0].get("doc") if citations else None) or metadata.get("doc")
           or (next(iter(notices)) if len(notices) == 1 else None))  # a one-notice site: it is about that one
    row = Turn(
        sender=sender, question=bot.dialogue.masked(message.strip())[:current_app.config["MAX_MESSAGE_CHARS"]],
        answered=not last.get("abstained") and bool(citations or last.get("kind") in ("overview", "chat", "channels")),
        doc=str(doc)[:100] if doc else None, intent=(debug.get("intent") or {}).get("name") or last.get("intent"),
        kind=last.get("kind"), reason=turn.get("decided_by"),
        cited_doc=citations[0].get("doc") if citations else None,
        cited_anchors=[c.get("anchor", "") for c in citations],
        top_score=hits[0].get("fused") if hits else (citations[0].get("score") if citations else None),
        latency_ms=round(latency_ms, 1), page=page_path(metadata.get("page")),
        p_out_of_scope=(debug.get("features") or {}).get("p_out_of_scope"),
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
        return bad_request("invalid_json", "请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    sender, turn_id, rating = body.get("sender"), body.get("turn_id"), body.get("rating")
    reason, comment = body.get("reason"), body.get("comment")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > current_app.config["MAX_SENDER_CHARS"]:
        return bad_request("missing_field", "请求缺少有效的发送者标识（sender）。", "Field 'sender' must be a non-empty string.")
    if turn_id is not None and (not isinstance(turn_id, str) or not re.fullmatch(r"[0-9a-f]{32}", turn_id)):
        return bad_request("invalid_turn_id", "回答编号（turn_id）无效。", "Field 'turn_id' must be the answer's custom.turn_id.")
    if rating not in RATINGS:
        return bad_request("invalid_rating", "评价（rating）应为 up 或 down。", "Field 'rating' must be 'up' or 'down'.")
    if reason is not None and reason not in REASONS:
        return bad_request("invalid_reason", f"原因（reason）应为：{'、'.join(REASONS)}。",
                            f"Field 'reason' must be one of {', '.join(REASONS)}.")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS
                                or BAD_CHARS_RE.search(comment)):
        return bad_request("invalid_comment", f"补充说明最多{MAX_COMMENT_CHARS}个字。",
                            f"Field 'comment' must be text of at most {MAX_COMMENT_CHARS} characters.")
    conversation_log = current_app.extensions.get("conversation_log")
    if conversation_log is None:
        return error(503, "feedback_off", "本站未开启评价记录。", "The conversation log is off (CONVERSATION_LOG).")
    bot = live_bot().bot
    masked = bot.dialogue.masked(comment.strip()) if (comment and bot is not None) else (comment or None)
    conversation_log.feedback(sender.strip(), turn_id, rating, reason, masked or None)
    return jsonify({"ok": True}), 202


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
        return not BAD_CHARS_RE.search(value)
    return True


def _origin_refused() -> Response:
    return error(403, "origin_not_allowed", "该网站未获授权嵌入本咨询服务。",
                 "This origin is not listed in ALLOWED_ORIGINS.")


def _own_origin(origin: str) -> bool:
    """Whether ``origin`` is this service itself (its demo and notice pages), as the request or
    ``PUBLIC_URL`` names it."""
    origin = origin.rstrip("/")
    public = re.match(r"^https?://[^/]+", current_app.config["PUBLIC_URL"] or "")
    return origin == request.host_url.rstrip("/") or bool(public and origin == public.group())


def _foreign_origin() -> Response | None:
    """403 for a POST from a site neither allowed nor this service itself: CORS only stops a
    browser from reading the reply, the request would still be carried out."""
    origin = request.headers.get("Origin")
    if origin and not allowed_origin(origin) and not _own_origin(origin):
        return _origin_refused()
    return None


def _preflight() -> Response:
    origin = allowed_origin(request.headers.get("Origin"))
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
    live = live_bot()
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
            # whether the weights deciding when to decline were learnt on the notices loaded now
            "scope": bot.answerer.policy.changes_since_learnt(bot.retriever.library),
            **_conversations(bot),
            **_log_status(),
        })
    if status["state"] == "unavailable":
        if not details:
            return error(503, "unavailable", "咨询服务暂时不可用，请稍后再试。", "The service is unavailable.")
        # The project's errors read "中文 / English": the operator gets both halves.
        reason = (status.get("build_error") or (status.get("last_build") or {}).get("error") or status.get("error")
                  or "")
        zh, _, en = reason.partition(" / ")
        return error(503, "unavailable", f"咨询服务加载失败：{zh}" if en else "咨询服务加载失败，请查看服务日志。",
                     en or "The bot failed to load; see the server log.", extra={"index": status})
    word = {"building": "正在更新通报内容", "starting": "正在启动"}[status["state"]]
    body = {"status": status["state"], "message": f"咨询服务{word}。"}
    if details:
        body["seconds"] = round(time.monotonic() - live.started, 1)
        body["index"] = status
    return jsonify(body), 503


bp.add_url_rule("/healthz", "healthz", healthz)
bp.add_url_rule("/webhooks/rest/", "rest_status", rest_status)
bp.add_url_rule("/webhooks/rest/webhook", "webhook", webhook, methods=["POST", "OPTIONS"])
bp.add_url_rule("/webhooks/rest/feedback", "feedback", feedback, methods=["POST", "OPTIONS"])
