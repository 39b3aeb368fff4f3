"""A local stand-in that speaks Rasa's REST channel protocol — clearly not Rasa itself.

No Rasa server can run here (Rasa 3.6 needs Python < 3.11), so the relay (BOT_BACKEND=rasa) is
tested against this: POST /webhooks/rest/webhook, a JSON list of messages, and an action's
json_message as a separate custom-only message, as Rasa's REST channel sends them.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CITATION = {
    "doc": "qingyuan-wlj-xuncha-2025", "number": "16", "heading": "大力推进应急广播系统建设",
    "path": "二、（四）第16条", "anchor": "item-16", "passage": "…", "quote": "…", "score": 0.3,
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.received.append((self.path, body))
        payload = self.server.reply or json.dumps([
            {"recipient_id": body["sender"], "text": f"根据《关于八届市委第五轮巡察整改进展情况的通报》第16条“大力推进应急广播系统建设”：{body['message']}"},
            {"recipient_id": body["sender"], "custom": {"citations": [CITATION], "abstained": False}},
        ], ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextmanager
def rest_channel_stand_in():
    """Serve the stand-in on a free loopback port; yields the server (``.url``, ``.received``, ``.reply``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received, server.reply = [], b""
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
