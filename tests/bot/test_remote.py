"""BOT_BACKEND=rasa: relaying to a Rasa server's REST channel (tested against a local stand-in)."""

import pytest

from bot.remote import RasaUnavailableError, RemoteRasaDialogue, fold_messages
from tests.bot.rasa_standin import CITATION, rest_channel_stand_in


@pytest.fixture()
def stand_in():
    with rest_channel_stand_in() as server:
        yield server


def test_relays_in_rest_channel_format_and_folds_custom(stand_in):
    messages = RemoteRasaDialogue(stand_in.url).handle("citizen-1", "应急广播", {"page": "demo"})
    assert stand_in.received == [("/webhooks/rest/webhook", {"sender": "citizen-1", "message": "应急广播",
                                                             "metadata": {"page": "demo"}})]
    assert messages == [{
        "recipient_id": "citizen-1",
        "text": "根据《关于八届市委第五轮巡察整改进展情况的通报》第16条“大力推进应急广播系统建设”：应急广播",
        "custom": {"citations": [CITATION], "abstained": False, "suggestions": []},
    }]


def test_unreachable_rasa_is_a_clear_error():
    with pytest.raises(RasaUnavailableError, match="无法连接"):
        RemoteRasaDialogue("http://127.0.0.1:9", timeout=2).handle("s", "你好")


def test_garbage_from_rasa_is_a_clear_error(stand_in):
    stand_in.reply = b"<html>502</html>"
    with pytest.raises(RasaUnavailableError, match="无法识别"):
        RemoteRasaDialogue(stand_in.url).handle("s", "你好")
    stand_in.reply = b'{"not": "a list"}'
    with pytest.raises(RasaUnavailableError):
        RemoteRasaDialogue(stand_in.url).handle("s", "你好")


def test_plain_utterances_pass_through():
    assert fold_messages("s", [{"recipient_id": "s", "text": "您好"}, {"recipient_id": "s", "text": "请问"}]) == [
        {"recipient_id": "s", "text": "您好", "custom": {"citations": [], "abstained": False, "suggestions": []}},
        {"recipient_id": "s", "text": "请问", "custom": {"citations": [], "abstained": False, "suggestions": []}},
    ]


@pytest.mark.parametrize("url", ["", "localhost:5005", "ftp://x"])
def test_bad_url_is_refused(url):
    with pytest.raises(ValueError, match="RASA_URL"):
        RemoteRasaDialogue(url)
