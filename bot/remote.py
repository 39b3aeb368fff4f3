"""Forward conversations to a Rasa server instead of the embedded dialogue (``BOT_BACKEND=rasa``).

A site that already runs Rasa 3.6 trains and serves ``bot/`` itself (see the README); our server
then only relays the widget's messages to Rasa's REST channel and passes the replies back. Rasa
sends an action's ``json_message`` as a separate message with only ``custom``; the relay folds it
into the text message before it, so the widget sees the same shape either way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from bot.privacy import mask


class RasaUnavailableError(RuntimeError):
    """The Rasa server did not answer as the REST channel should (message: Chinese, then English)."""


class RemoteRasaDialogue:
    """Talks to ``{rasa_url}/webhooks/rest/webhook``.

    :param rasa_url: the Rasa server's base URL, e.g. ``http://localhost:5005``.
    :param timeout: seconds to wait for Rasa's reply.
    """

    def __init__(self, rasa_url: str, timeout: float = 30.0) -> None:
        if not rasa_url or not rasa_url.startswith(("http://", "https://")):
            raise ValueError(f"RASA_URL must be an http(s) URL, got {rasa_url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self.url = rasa_url.rstrip("/") + "/webhooks/rest/webhook"
        self.timeout = timeout

    def warm_up(self) -> None:
        """Nothing to load: Rasa holds the model."""

    def reset(self, sender: str) -> None:
        """Rasa keeps the tracker; a new conversation is a new sender id on the widget's side."""

    def masked(self, text: str) -> str:
        """``text`` with personal data masked (Rasa stores what it is sent)."""
        return mask(text)

    def handle(self, sender: str, text: str, metadata: dict | None = None, debug: bool = False) -> list[dict]:
        """Relay one message (masked); :raises RasaUnavailableError: when Rasa cannot be reached or
        answers badly. ``debug`` is Rasa's to give (it is not asked for)."""
        body = {"sender": sender, "message": self.masked(text)}
        if metadata:
            body["metadata"] = metadata
        request = urllib.request.Request(self.url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                replies = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RasaUnavailableError(f"Rasa 服务暂时无法连接。 / Rasa at {self.url} is unreachable: {exc}") from exc
        except ValueError as exc:
            raise RasaUnavailableError(f"Rasa 服务返回了无法识别的内容。 / Rasa sent invalid JSON: {exc}") from exc
        if not isinstance(replies, list):
            raise RasaUnavailableError("Rasa 服务返回了无法识别的内容。 / Rasa's reply is not a list of messages")
        return fold_messages(sender, replies)


def fold_messages(sender: str, replies: list) -> list[dict]:
    """Rasa REST replies → our shape: a custom-only message joins the text message before it."""
    out: list[dict] = []
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        custom = reply.get("custom") if isinstance(reply.get("custom"), dict) else None
        text = reply.get("text")
        if text is None and custom is not None and out and not out[-1]["custom"].get("_folded"):
            out[-1]["custom"].update(custom)
            out[-1]["custom"]["_folded"] = True
            continue
        message = {"recipient_id": reply.get("recipient_id", sender), "text": text or "",
                   "custom": dict(custom or {})}
        out.append(message)
    for message in out:
        message["custom"].pop("_folded", None)
        message["custom"].setdefault("citations", [])
        message["custom"].setdefault("abstained", False)
        message["custom"].setdefault("suggestions", [])
    return out
