"""Conversations through the real Flask webhook (same sender), embedded and relayed to Rasa."""

import pytest

from bot.runtime import build_bot
from server import create_app
from tests.bot.rasa_standin import rest_channel_stand_in

pytestmark = pytest.mark.slow

WEBHOOK = "/webhooks/rest/webhook"


def _say(client, sender, text):
    response = client.post(WEBHOOK, json={"sender": sender, "message": text})
    assert response.status_code == 200, response.get_json()
    messages = response.get_json()
    assert len(messages) == 1 and messages[0]["recipient_id"] == sender
    return messages[0]


def _anchor(message):
    citations = message["custom"]["citations"]
    return citations[0]["anchor"] if citations else None


@pytest.mark.parametrize(
    "sender, turns",
    [
        ("w-broadcast", [("应急广播建设进展如何", "item-16", "市级应急广播系统"),
                         ("连南那边呢？", "item-16", "连南应急广播系统")]),
        ("w-toilets", [("旅游厕所建了多少座", "item-4", "旅游厕所368座"),
                       ("集散中心呢？", "item-4", "旅游集散中心8个")]),
        ("w-union", [("第二十三条", "item-23", "工会会员费"),
                     ("那经费怎么用的？", "item-24", "")]),
        # a new topic question is not dragged back to the old one
        ("w-switch", [("应急广播建设进展如何", "item-16", ""),
                      ("旅游景区的安全谁来管", "item-18", ""),
                      ("工会会费按什么标准收", "item-23", "")]),
    ],
)
def test_multi_turn(client, sender, turns):
    client.post(WEBHOOK, json={"sender": sender, "message": "/restart"})
    for text, anchor, fragment in turns:
        message = _say(client, sender, text)
        assert _anchor(message) == anchor, f"{text!r}: {message['text'][:80]}"
        assert fragment in message["text"]
        assert message["custom"]["citations"][0]["url"].endswith(f"#{anchor}")


def test_topic_switch_then_follow_up_uses_the_new_topic(client):
    sender = "w-switch-follow"
    assert _anchor(_say(client, sender, "应急广播建设进展如何")) == "item-16"
    assert _anchor(_say(client, sender, "旅游厕所建了多少座")) == "item-4"
    follow = _say(client, sender, "集散中心呢？")
    assert _anchor(follow) == "item-4" and "旅游集散中心8个" in follow["text"]


def test_greeting_thanks_help_and_contact(client):
    assert "您好" in _say(client, "w-chat", "你好")["text"]
    assert "不客气" in _say(client, "w-chat", "谢谢")["text"]
    help_message = _say(client, "w-chat", "你能做什么")
    assert help_message["custom"]["suggestions"]
    contact = _say(client, "w-chat", "怎么反映意见")
    assert "0763-3375826" in contact["text"] and "qywgltj@gdqy.gov.cn" in contact["text"]


def test_out_of_scope_abstains_with_contact(client):
    message = _say(client, "w-oos", "明天天气怎么样")
    assert message["custom"]["abstained"] is True
    assert message["custom"]["citations"] == []
    assert "0763-3375826" in message["text"]
    assert len(message["custom"]["suggestions"]) == 3


def test_senders_do_not_share_state(client):
    _say(client, "w-a", "应急广播建设进展如何")
    _say(client, "w-b", "旅游厕所建了多少座")
    assert _anchor(_say(client, "w-a", "连南那边呢？")) == "item-16"


def _relay_app(bot, rasa_url):
    relayed = build_bot({"INDEX_DIR": str(bot.retriever.build_dir), "BOT_BACKEND": "rasa", "RASA_URL": rasa_url,
                         "RASA_TIMEOUT": 5})
    # The relay still serves the notice page, so it shares the warmed-up local index.
    relayed.retriever, relayed.answerer, relayed.embedder = bot.retriever, bot.answerer, bot.embedder
    return create_app({"TESTING": True, "BOT": relayed}).test_client()


def test_bot_backend_rasa_relays_through_the_webhook(bot):
    with rest_channel_stand_in() as stand_in:
        client = _relay_app(bot, stand_in.url)
        message = _say(client, "relay-1", "应急广播建设进展如何")
    assert stand_in.received[0][1] == {"sender": "relay-1", "message": "应急广播建设进展如何"}
    assert message["text"].startswith("根据《关于八届市委第五轮巡察整改进展情况的通报》第16条")
    assert message["custom"]["citations"][0]["anchor"] == "item-16"
    assert message["custom"]["citations"][0]["url"].endswith("#item-16")


def test_bot_backend_rasa_unreachable_is_a_json_503(bot):
    client = _relay_app(bot, "http://127.0.0.1:9")
    response = client.post(WEBHOOK, json={"sender": "relay-2", "message": "你好"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "upstream_unavailable" and "稍后再试" in body["message"] and body["detail"]
