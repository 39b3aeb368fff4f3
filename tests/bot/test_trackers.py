"""Tracker stores: in memory, SQL (SQLite) and Redis (a real redis-server on a free loopback port)."""

from __future__ import annotations

import time

import pytest


from bot import constants as C
from bot.dialogue import Dialogue
from bot.trackers import (MAX_EVENTS, InMemoryTrackerStore, RedisTrackerStore, Session, SQLTrackerStore,
                          read_endpoints, tracker_store)



@pytest.fixture(params=["memory", "sql", "redis"])
def make_store(request, tmp_path):
    def make(ttl: float = 60, max_senders: int = 100):
        if request.param == "memory":
            return InMemoryTrackerStore(ttl, max_senders)
        if request.param == "sql":
            return SQLTrackerStore(f"sqlite:///{tmp_path / 'trackers.db'}", ttl, max_senders)
        url = request.getfixturevalue("redis_url")
        return RedisTrackerStore(url, ttl, max_senders, key_prefix=f"t{time.monotonic_ns()}:")
    return make


def test_a_conversation_is_saved_and_read_back(make_store):
    store = make_store()
    session = store.retrieve("alice")
    session.slots[C.SLOT_LAST_ANCHOR] = "item-16"
    session.add_events([{"event": "user", "text": "应急广播建设进展如何"}])
    store.save(session)
    again = store.retrieve("alice")
    assert again.slots[C.SLOT_LAST_ANCHOR] == "item-16"
    assert again.events == [{"event": "user", "text": "应急广播建设进展如何"}]
    store.delete("alice")
    assert store.retrieve("alice").slots[C.SLOT_LAST_ANCHOR] is None


def test_conversations_expire(make_store):
    store = make_store(ttl=1)
    session = store.retrieve("bob")
    session.slots[C.SLOT_LAST_ANCHOR] = "item-4"
    store.save(session)
    time.sleep(1.2)
    assert store.retrieve("bob").slots[C.SLOT_LAST_ANCHOR] is None


def test_senders_and_what_one_keeps_are_bounded(make_store):
    store = make_store(max_senders=3)
    for i in range(6):
        session = store.retrieve(f"s{i}")
        # one sender sending 15 KB of metadata with each of many turns
        session.add_events([{"event": "user", "text": "问" * 2000, "metadata": {"doc": "d", "junk": "x" * 15000}}
                            for _ in range(40)])
        store.save(session)
        time.sleep(0.01)
    if isinstance(store, SQLTrackerStore):
        store.prune()
    assert store.count() <= 3
    kept = store.retrieve("s5")
    assert len(kept.events) == MAX_EVENTS
    assert kept.events[-1]["metadata"] == {"doc": "d"} and len(kept.events[-1]["text"]) == 500
    assert len(kept.to_json()) < 20_000


def test_two_workers_sharing_a_store_keep_the_context(bot, tmp_path, redis_url):
    """Two dialogues (as two gunicorn workers) over one SQL file, then one Redis: a follow-up
    that reaches the other worker is still read against the first turn."""
    for store_a, store_b in (
        (SQLTrackerStore(f"sqlite:///{tmp_path / 'shared.db'}"), SQLTrackerStore(f"sqlite:///{tmp_path / 'shared.db'}")),
        (RedisTrackerStore(redis_url, key_prefix="shared:"), RedisTrackerStore(redis_url, key_prefix="shared:")),
    ):
        one = Dialogue(bot.answerer, classifier=bot.dialogue.classifier, store=store_a)
        two = Dialogue(bot.answerer, classifier=bot.dialogue.classifier, store=store_b)
        one.handle("citizen", "应急广播建设进展如何")
        reply = two.handle("citizen", "那连南呢？")[0]
        assert reply["custom"]["citations"][0]["anchor"] == "item-16" and "连南" in reply["text"]


def test_endpoints_select_the_store(tmp_path, monkeypatch, redis_url):
    sql = tmp_path / "endpoints.yml"
    sql.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: var/t.db\n", encoding="utf-8")
    store = tracker_store(read_endpoints(sql), base=tmp_path)
    assert isinstance(store, SQLTrackerStore) and (tmp_path / "var" / "t.db").exists()
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setenv("TEST_REDIS_PORT", port)
    red = tmp_path / "redis.yml"
    red.write_text("tracker_store:\n  type: redis\n  url: 127.0.0.1\n  port: ${TEST_REDIS_PORT}\n  record_exp: 90\n",
                   encoding="utf-8")
    store = tracker_store(read_endpoints(red))
    assert isinstance(store, RedisTrackerStore) and store.ttl == 90 and store.client.ping()
    assert isinstance(tracker_store({}), InMemoryTrackerStore)
    assert isinstance(tracker_store({}, redis_url=redis_url), RedisTrackerStore)
    with pytest.raises(ValueError, match="tracker_store"):
        tracker_store({"type": "mongod"})


def test_a_stored_session_round_trips_as_json():
    session = Session("s", events=[{"event": "user", "text": "你好"}])
    assert Session.from_json(session.to_json()) == session


def test_a_store_that_fails_costs_a_turn_its_context_never_its_answer(bot, tmp_path):
    """Redis stopped under a running dialogue: the next turns are answered as first questions,
    and the failures are counted for /healthz."""
    from tests.conftest import redis_server

    with redis_server(tmp_path / "redis") as url:
        dialogue = Dialogue(bot.answerer, classifier=bot.dialogue.classifier,
                            store=RedisTrackerStore(url, 60, 100, key_prefix="down:"))
        first = dialogue.handle("down-1", "应急广播建设进展如何")[0]
        assert first["custom"]["citations"][0]["anchor"] == "item-16"
        assert dialogue.sessions.failures == 0
    second = dialogue.handle("down-1", "旅游厕所建了多少座")[0]
    assert second["custom"]["citations"][0]["anchor"] == "item-4"
    assert dialogue.sessions.failures >= 2  # the read and the write of that turn
    assert "ConnectionError" in dialogue.sessions.last_error
    assert dialogue.sender_count == 0
