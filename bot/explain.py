"""Why the bot answered a turn as it did, in plain Chinese, for staff who are not programmers.

It reads the turn's debug (what the dialogue and the answerer record: the intent, how the turn was
read, what was searched, the scope decision and its signals, the passages ranked) and says it the
way a colleague would: 找到第16条，因为问题里的“应急广播”“建设”在这一条里；与已标注问题“应急广播建好了没”
很接近（0.95）；把握：高。 The full table stays beside it, for the 详细 view.
"""

from __future__ import annotations

from index.text import normalize, words

# What each intent that is not a search of the notices is, as staff would say it.
_INTENT_WORDS = {
    "greet": "问候", "goodbye": "道别", "thank": "致谢", "affirm": "表示知道了", "help": "问怎么使用",
    "bot_challenge": "问是不是机器人", "chitchat": "闲聊", "complain": "批评或投诉",
    "request_human": "要求找工作人员", "not_understood": "表示没看懂上一条回答",
    "ask_contact": "询问联系方式", "ask_overview": "询问整改了哪些方面", "ask_item_by_number": "按条号查询",
}
# The signals that decide alone (bot/scope.py DECISIVE), in words.
_SIGNAL_WORDS = {
    "type_unmet": "问的是通报在这部分没有写到的那类信息（如具体数字、日期、地点或名称）",
    "service_ask": "问的是个人办事（如办证、挂号、买票），属于办事咨询，通报没有涉及",
    "asks_name": "问的是某个人的名字，整改通报不写这些",
    "foreign_names": "问的是别的单位或地方，不是本通报的发布单位",
    "foreign_ordinals": "问的是别的巡察轮次或年份",
    "about_now": "问的是当下（今天、昨天、最近）的事，整改通报不涉及",
    "labelled_declined": "与工作人员已标注为“通报未涉及”的问题几乎一样",
}


def confidence(p_out_of_scope: float | None, answered: bool) -> str:
    """高 / 中 / 低: how sure the scope model was of what it did."""
    if p_out_of_scope is None:
        return "高"
    sure = (1 - p_out_of_scope) if answered else p_out_of_scope
    return "高" if sure >= 0.85 else "中" if sure >= 0.65 else "低"


def explain(message: dict, question: str, library) -> dict:
    """The explanation of one reply of the widget (``custom`` holding ``debug``).

    :param question: what was asked.
    :param library: the notices (for the words a passage shares with the question).
    :returns: ``{"summary": 一段话, "follow_up_of": 上一句 or None, "confidence": 高/中/低 or None}``.
    """
    custom = message.get("custom") or {}
    debug = custom.get("debug") or {}
    intent = (debug.get("intent") or {}).get("name") or ""
    turn = debug.get("turn") or {}
    features = debug.get("features") or {}
    hits = debug.get("hits") or []
    citations = custom.get("citations") or []
    p = features.get("p_out_of_scope")
    kind = custom.get("kind")
    parts: list[str] = []
    of = turn.get("of") if turn.get("follow_up") else None
    if of:
        parts.append(f"这是追问，接着上一句“{of.get('question', '')}”（{of.get('label', '')}）来理解")
    if kind == "choose_notice":
        parts.append("几份通报都能回答，先请群众选择是哪一份")
        return _done(parts, of, None)
    if turn.get("searched") is None and intent in _INTENT_WORDS and not citations:
        parts.append(f"问题被理解为“{_INTENT_WORDS[intent]}”，按固定回复作答，没有检索通报")
        return _done(parts, of, None)
    if custom.get("abstained"):
        parts.append("没有回答：" + _why_declined(turn, features))
        return _done(parts, of, confidence(p, False) if not features.get("decisive") else "高")
    if citations:
        first = citations[0]
        found = f"找到{first.get('notice', '')}{_title(first)}"
        reasons = []
        shared = _shared_words(question, first, library, turn)
        if shared:
            reasons.append("问题里的" + "".join(f"“{w}”" for w in shared) + "在这一条里")
        labelled = (hits[0].get("labelled") or {}) if hits else {}
        if labelled.get("question") and labelled.get("similarity", 0) >= 0.85:
            reasons.append(f"与已标注问题“{labelled['question']}”很接近（{labelled['similarity']:.2f}）")
        if of and turn.get("decided_by"):
            reasons.append(str(turn["decided_by"]))
        text = found + ("，因为" + "；".join(reasons) if reasons else "")
        parts.append(text)
        level = confidence(p, True) if p is not None else None
        return _done(parts, of, level)
    if intent in _INTENT_WORDS:
        parts.append(f"问题被理解为“{_INTENT_WORDS[intent]}”，按固定回复作答")
    return _done(parts, of, None)


def _done(parts: list[str], of: dict | None, level: str | None) -> dict:
    summary = "；".join(p for p in parts if p)
    if level:
        summary += f"；把握：{level}"
    return {"summary": summary + "。", "follow_up_of": (of or {}).get("question"), "confidence": level}


def _title(citation: dict) -> str:
    """第16条 大力推进应急广播系统建设, “前言”部分, or "" for a passage with no heading."""
    number, heading = citation.get("number"), citation.get("heading") or ""
    if not heading:
        return ""
    return f"第{number}条 {heading}" if number else f"“{heading}”部分"


def _why_declined(turn: dict, features: dict) -> str:
    decisive = features.get("decisive") or []
    if decisive:
        return "；".join(_SIGNAL_WORDS.get(name, name) for name in decisive)
    reason = str(turn.get("decided_by") or "")
    if features.get("p_out_of_scope") is not None and reason.startswith("学习模型"):
        return f"问题与通报的内容不够接近，判断为通报未涉及（把握 {features['p_out_of_scope']:.0%}）"
    if reason == "没有中文，通报无从回答":
        return "问题里没有中文，通报无从回答"
    return reason or "通报没有涉及这个问题"


def _shared_words(question: str, citation: dict, library, turn: dict) -> list[str]:
    """The question's words (two characters or more) that the cited passage uses, as searched
    (a follow-up searches nothing: its words are the turn's own)."""
    searched = turn.get("searched")
    if not isinstance(searched, str) or searched.startswith("（不检索）"):
        searched = question
    notice = library.notices.get(citation.get("doc")) if library is not None else None
    node = notice.find(citation.get("anchor") or "") if notice is not None else None
    passage = normalize((node.text if node is not None else "") + (citation.get("heading") or ""))
    out: list[str] = []
    for w in words(normalize(searched or "")):
        if len(w) >= 2 and w in passage and w not in out:
            out.append(w)
    return out[:4]
