"""BOT_BACKEND=rasa: relaying to a Rasa server's REST channel.

No Rasa server can run here, so these tests talk to a local *stand-in* that speaks the REST
channel protocol (POST /webhooks/rest/webhook, a JSON list of messages, an action's
json_message as a separate custom-only message), clearly not Rasa itself.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.remote import RasaUnavailableError, RemoteRasaDialogue, fold_messages


class _RestChannelStandIn(BaseHTTPRequestHandler):
    received: list = []
    reply: bytes = b""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        type(self).received.append((self.path, body))
        payload = type(self).reply or json.dumps([
            {"recipient_id": body["sender"], "text": f"根据通报第16条：{body['message']}"},
            {"recipient_id": body["sender"], "custom": {"citations": [{"anchor": "item-16"}], "abstained": False}},
        ], ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def stand_in():
    _RestChannelStandIn.received = []
    _RestChannelStandIn.reply = b""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RestChannelStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _RestChannelStandIn
    server.shutdown()


def test_relays_in_rest_channel_format_and_folds_custom(stand_in):
    url, handler = stand_in
    messages = RemoteRasaDialogue(url).handle("citizen-1", "应急广播", {"page": "demo"})
    assert handler.received == [("/webhooks/rest/webhook", {"sender": "citizen-1", "message": "应急广播",
                                                             "metadata": {"page": "demo"}})]
    assert messages == [{
        "recipient_id": "citizen-1",
        "text": "根据通报第16条：应急广播",
        "custom": {"citations": [{"anchor": "item-16"}], "abstained": False, "suggestions": []},
    }]


def test_unreachable_rasa_is_a_clear_error():
    with pytest.raises(RasaUnavailableError, match="无法连接"):
        RemoteRasaDialogue("http://127.0.0.1:9", timeout=2).handle("s", "你好")


def test_garbage_from_rasa_is_a_clear_error(stand_in):
    url, handler = stand_in
    handler.reply = b"<html>502</html>"
    with pytest.raises(RasaUnavailableError, match="无法识别"):
        RemoteRasaDialogue(url).handle("s", "你好")
    handler.reply = b'{"not": "a list"}'
    with pytest.raises(RasaUnavailableError):
        RemoteRasaDialogue(url).handle("s", "你好")


def test_plain_utterances_pass_through():
    assert fold_messages("s", [{"recipient_id": "s", "text": "您好"}, {"recipient_id": "s", "text": "请问"}]) == [
        {"recipient_id": "s", "text": "您好", "custom": {"citations": [], "abstained": False, "suggestions": []}},
        {"recipient_id": "s", "text": "请问", "custom": {"citations": [], "abstained": False, "suggestions": []}},
    ]


@pytest.mark.parametrize("url", ["", "localhost:5005", "ftp://x"])
def test_bad_url_is_refused(url):
    with pytest.raises(ValueError, match="RASA_URL"):
        RemoteRasaDialogue(url)
