"""The rasa-sdk actions, in-process with Tracker and CollectingDispatcher (no server needed)."""

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import constants as C
from bot.actions import (ActionAnswerFromNotice, ActionComplaint, ActionContact, ActionHumanHandoff, ActionItemByNumber,
                         ActionOverview)

pytestmark = pytest.mark.slow


def _tracker(text, intent=C.INTENT_ASK_NOTICE, slots=None, entities=None):
    return Tracker(
        sender_id="test-user",
        slots={s: None for s in C.SLOTS} | (slots or {}),
        latest_message={"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": entities or []},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def _run(action, tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def test_answer_action_utters_citations_and_sets_slots(answerer):
    messages, events = _run(ActionAnswerFromNotice(answerer), _tracker("应急广播建设进展如何"))
    assert len(messages) == 1
    message = messages[0]
    assert message["text"].startswith("根据《关于八届市委第五轮巡察整改进展情况的通报》第16条“大力推进应急广播系统建设”")
    custom = message["custom"]
    assert custom["abstained"] is False
    assert custom["citations"][0]["anchor"] == "item-16"
    assert custom["citations"][0]["spans"], "quoted sentences carry their offsets for highlighting"
    slots = {e["name"]: e["value"] for e in events}
    spans = [f"{s}-{e}" for s, e in custom["citations"][0]["spans"]]
    assert slots == {C.SLOT_LAST_QUESTION: "应急广播建设进展如何", C.SLOT_CITED: "item-16", C.SLOT_DECLINED: False,
                     C.SLOT_LAST_ANCHOR: "item-16", C.SLOT_LAST_DOC: "qingyuan-wlj-xuncha-2025",
                     C.SLOT_LAST_QUOTED: spans, C.SLOT_LAST_ITEM: "item-16", C.SLOT_LAST_TOPIC: "topic-4"}


def test_answer_action_follows_up_from_the_slots(answerer):
    tracker = _tracker("连南那边呢？", slots={C.SLOT_LAST_ITEM: "item-16", C.SLOT_LAST_TOPIC: "topic-4"})
    messages, _ = _run(ActionAnswerFromNotice(answerer), tracker)
    assert messages[0]["custom"]["citations"][0]["anchor"] == "item-16"
    assert "连南应急广播系统" in messages[0]["text"]


def test_answer_action_abstains_and_keeps_no_item(answerer):
    messages, events = _run(ActionAnswerFromNotice(answerer), _tracker("身份证丢了怎么补办"))
    assert messages[0]["custom"]["abstained"] is True
    assert "0763-3375826" in messages[0]["text"]
    # the outcome is a decline, and the question and passage a follow-up is read against stay as
    # they were (none here): a declined question is no subject to follow up
    assert {e["name"]: e["value"] for e in events} == {C.SLOT_LAST_QUESTION: None, C.SLOT_CITED: None,
                                                       C.SLOT_DECLINED: True}
    after = _tracker("身份证丢了怎么补办", slots={C.SLOT_LAST_QUESTION: "应急广播建设进展如何", C.SLOT_LAST_ANCHOR: "item-16"})
    _, events = _run(ActionAnswerFromNotice(answerer), after)
    assert {e["name"]: e["value"] for e in events}[C.SLOT_LAST_QUESTION] == "应急广播建设进展如何"


def test_item_action_reads_the_entity(answerer):
    tracker = _tracker("第二十三条讲什么", C.INTENT_ASK_ITEM_BY_NUMBER,
                       entities=[{"entity": C.ENTITY_ITEM_NUMBER, "value": "二十三"}])
    messages, events = _run(ActionItemByNumber(answerer), tracker)
    assert messages[0]["custom"]["citations"][0]["anchor"] == "item-23"
    assert {"event": "slot", "timestamp": None, "name": C.SLOT_LAST_TOPIC, "value": "topic-9"} in events


def test_item_action_reads_the_text_when_no_entity_came(answerer):
    messages, _ = _run(ActionItemByNumber(answerer), _tracker("第十六条", C.INTENT_ASK_ITEM_BY_NUMBER))
    assert messages[0]["custom"]["citations"][0]["anchor"] == "item-16"


def test_overview_and_contact_actions(answerer):
    messages, _ = _run(ActionOverview(answerer), _tracker("整改了哪些方面", C.INTENT_ASK_OVERVIEW))
    assert "11个方面" in messages[0]["text"]
    messages, _ = _run(ActionContact(answerer), _tracker("怎么反映意见", C.INTENT_ASK_CONTACT))
    assert "0763-3375826" in messages[0]["text"]
    assert messages[0]["custom"]["citations"][0]["anchor"] == "contact"


def test_action_names_are_the_shared_constants(answerer):
    names = {a(answerer).name() for a in (ActionAnswerFromNotice, ActionOverview, ActionItemByNumber, ActionContact,
                                          ActionComplaint, ActionHumanHandoff)}
    assert names == set(C.CUSTOM_ACTIONS)
