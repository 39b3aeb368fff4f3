"""The custom actions on the real rasa-sdk action server, called exactly as Rasa 3.6 calls them."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from bot import constants as C
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def action_server(bot, index_dir):
    port = free_port()
    env = dict(os.environ, INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "bot.actions", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"action server exited: {proc.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if json.load(resp).get("status") == "ok":
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("action server did not start within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _post(url, body: bytes, timeout=180):
    request = urllib.request.Request(f"{url}/webhook", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _rasa_request(action: str, text: str, intent: str, slots: dict | None = None) -> dict:
    """The body Rasa 3.6's RemoteAction sends to the action endpoint."""
    latest = {
        "intent": {"name": intent, "confidence": 0.97},
        "entities": [],
        "text": text,
        "message_id": "a1b2c3",
        "metadata": {},
        "intent_ranking": [{"name": intent, "confidence": 0.97}],
    }
    return {
        "next_action": action,
        "sender_id": "citizen-42",
        "tracker": {
            "sender_id": "citizen-42",
            "slots": {s: None for s in C.SLOTS} | (slots or {}),
            "latest_message": latest,
            "latest_event_time": 1760000000.0,
            "followup_action": None,
            "paused": False,
            "events": [
                {"event": "action", "timestamp": 1760000000.0, "name": "action_session_start"},
                {"event": "session_started", "timestamp": 1760000000.0},
                {"event": "action", "timestamp": 1760000000.0, "name": "action_listen"},
                {"event": "user", "timestamp": 1760000000.0, "text": text, "parse_data": latest,
                 "input_channel": "rest", "message_id": "a1b2c3", "metadata": {}},
            ],
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
        "domain": {
            "version": "3.1",
            "intents": list(C.INTENTS),
            "entities": [C.ENTITY_ITEM_NUMBER],
            "slots": {s: {"type": "text", "mappings": [{"type": "custom"}]} for s in C.SLOTS},
            "responses": {},
            "actions": list(C.CUSTOM_ACTIONS),
        },
        "version": "3.6.20",
    }


def test_answer_action_over_http(action_server):
    body = json.dumps(_rasa_request(C.ACTION_ANSWER_FROM_NOTICE, "应急广播建设进展如何", C.INTENT_ASK_NOTICE)).encode()
    status, data = _post(action_server, body)
    assert status == 200, data
    assert {"event": "slot", "timestamp": None, "name": C.SLOT_LAST_ITEM, "value": "item-16"} in data["events"]
    response = data["responses"][0]
    assert response["text"].startswith("根据《关于八届市委第五轮巡察整改进展情况的通报》第16条“大力推进应急广播系统建设”")
    assert response["custom"]["citations"][0]["anchor"] == "item-16"
    assert response["custom"]["abstained"] is False


def test_follow_up_over_http_uses_the_slots(action_server):
    request = _rasa_request(C.ACTION_ANSWER_FROM_NOTICE, "那经费怎么用的？", C.INTENT_ASK_NOTICE,
                            slots={C.SLOT_LAST_ITEM: "item-23", C.SLOT_LAST_TOPIC: "topic-9"})
    status, data = _post(action_server, json.dumps(request).encode())
    assert status == 200
    assert data["responses"][0]["custom"]["citations"][0]["anchor"] == "item-24"


def test_item_and_contact_actions_over_http(action_server):
    status, data = _post(action_server, json.dumps(
        _rasa_request(C.ACTION_ITEM_BY_NUMBER, "第十六条", C.INTENT_ASK_ITEM_BY_NUMBER)).encode())
    assert status == 200 and data["responses"][0]["custom"]["citations"][0]["anchor"] == "item-16"
    status, data = _post(action_server, json.dumps(
        _rasa_request(C.ACTION_CONTACT, "电话多少", C.INTENT_ASK_CONTACT)).encode())
    assert status == 200 and "0763-3375826" in data["responses"][0]["text"]


def test_unknown_action_is_404(action_server):
    status, data = _post(action_server, json.dumps(_rasa_request("action_no_such_thing", "你好", "greet")).encode())
    assert status == 404
    assert data["action_name"] == "action_no_such_thing"


def test_malformed_body_is_400(action_server):
    status, _ = _post(action_server, b"{this is not json")
    assert status == 400


def test_every_custom_action_in_the_domain_is_served(action_server):
    """The domain's custom actions exist on the action server (what `rasa data validate` cannot see)."""
    with urllib.request.urlopen(f"{action_server}/actions", timeout=10) as resp:
        served = {a["name"] for a in json.load(resp)}
    assert set(C.CUSTOM_ACTIONS) <= served
