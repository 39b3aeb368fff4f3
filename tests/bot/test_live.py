"""The bot a server answers with (bot/live.py): a staff label is answered with by every process
within seconds, before and without a new index build, and undoing it takes it back."""

from __future__ import annotations

import shutil
import time

import pytest

from bot.convlog import upgrade
from bot.live import LiveBot
from bot.runtime import build_bot
from bot.staff import LabelBook
from knowledge.store import NOTICES_DIR, questions_path

SEED = "qingyuan-wlj-xuncha-2025"
QUESTION = "图书馆的咖啡好喝吗"

pytestmark = pytest.mark.slow


def _cited(worker: LiveBot) -> list[str]:
    answer = worker.bot.answerer.answer(QUESTION)
    return [] if answer.abstained else [c.anchor for c in answer.citations]


def _settle(worker: LiveBot, timeout: float = 60.0) -> None:
    """One look at the files (as a request makes), then wait for what it started to finish."""
    worker.refresh()
    deadline = time.monotonic() + timeout
    while worker._loading and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture()
def workers(bot, index_dir, tmp_path):
    """Two processes' worth of live bots over one copy of the notices and of the built index,
    sharing the session's model; neither ever builds."""
    library, build = tmp_path / "notices", tmp_path / "build"
    shutil.copytree(NOTICES_DIR, library)
    shutil.copytree(index_dir, build, symlinks=True)
    settings = {"LIBRARY_DIR": str(library), "INDEX_DIR": str(build)}
    made = [LiveBot(lambda s: build_bot(s, embedder=bot.embedder), settings, reload_every=0.0, build=False)
            for _ in range(2)]
    for worker in made:
        worker.start()
    return library, made


def test_a_label_is_answered_with_by_every_worker_at_once_and_undone(workers, tmp_path):
    library, (took_it, other) = workers
    built_at = took_it.bot.retriever.manifest["built_at"]
    assert "item-10" not in _cited(took_it)[:1] and "item-10" not in _cited(other)[:1]
    _settle(other)  # nothing changed: nothing to do
    assert "item-10" not in _cited(other)[:1]

    url = f"sqlite:///{tmp_path / 'labels.sqlite3'}"
    upgrade(url)
    labels = LabelBook(url, lambda doc: questions_path(library, doc))
    label = labels.add(SEED, QUESTION, "item-10", "王芳")
    assert took_it.relabel_now()["embedded"] == 1
    assert _cited(took_it)[:1] == ["item-10"]
    _settle(other)
    assert _cited(other)[:1] == ["item-10"]
    # answered with, not rebuilt: both still answer from the index they loaded
    assert took_it.bot.retriever.manifest["built_at"] == other.bot.retriever.manifest["built_at"] == built_at

    labels.undo(label.id, "王芳")
    took_it.relabel_now()
    _settle(other)
    assert "item-10" not in _cited(took_it)[:1] and "item-10" not in _cited(other)[:1]


def test_the_tests_fixed_bot_never_relabels(bot):
    assert LiveBot.serving(bot).relabel_now() is None
