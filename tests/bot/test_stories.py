"""Rasa test stories through the embedded dialogue (bot/stories.py, python -m bot test-stories)."""

from __future__ import annotations

import pytest

from bot import constants as C
from bot.stories import HELDOUT_STORIES, TUNING_STORIES, load_stories, run_stories

CLEAR = """version: "3.1"
stories:
- story: 应急广播，追问连南，再问天气
  steps:
  - user: |
      应急广播建设进展如何
    intent: ask_notice
  - action: action_answer_from_notice
  - slot_was_set:
    - cited: item-16
  - user: |
      那连南呢？
    intent: ask_follow_up
  - action: action_answer_from_notice
  - slot_was_set:
    - cited: item-16
  - user: |
      明天天气怎么样
    intent: out_of_scope
  - action: action_answer_from_notice
  - slot_was_set:
    - declined: true
- story: 投诉后道谢
  steps:
  - user: |
      你们整改就是走过场吧
    intent: complain
  - action: action_complaint
  - user: |
      谢谢
    intent: thank
  - action: utter_you_are_welcome
"""


def test_the_story_files_are_rasa_test_stories_of_the_right_size():
    tuning, heldout = load_stories(TUNING_STORIES), load_stories(HELDOUT_STORIES)
    assert len(tuning) >= 80 and len(heldout) >= 50
    for stories in (tuning, heldout):
        assert all(1 <= len(s.turns) <= 4 and all(t.actions for t in s.turns) for s in stories)
        intents = {t.intent for s in stories for t in s.turns}
        assert {C.INTENT_ASK_FOLLOW_UP, C.INTENT_OUT_OF_SCOPE, C.INTENT_COMPLAIN, C.INTENT_REQUEST_HUMAN} <= intents
        assert intents <= set(C.INTENTS)


def test_a_file_that_is_not_stories_is_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("stories:\n- story: x\n  steps:\n  - action: utter_greet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="before its first user turn"):
        load_stories(bad)
    bad.write_text("stories: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read stories"):
        load_stories(bad)


@pytest.mark.slow
def test_clear_stories_are_right_and_a_wrong_expectation_is_reported(bot, tmp_path):
    path = tmp_path / "stories.yml"
    path.write_text(CLEAR, encoding="utf-8")
    report = run_stories(bot.dialogue, load_stories(path)).to_dict()
    assert report["stories_right"] == 1.0 and report["turns"] == 5
    assert report["off_topic_declined"] == 1.0 and report["follow_ups_resolved"] == 1.0
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(CLEAR.replace("    - cited: item-16\n  - user: |\n      那连南呢", "    - cited: item-4\n  - user: |\n      那连南呢"),
                     encoding="utf-8")
    report = run_stories(bot.dialogue, load_stories(wrong))
    assert report.to_dict()["stories_right"] == 0.5
    assert [s.name for s, _ in report.failed()] == ["应急广播，追问连南，再问天气"]


@pytest.mark.slow
def test_the_cli_prints_the_failed_stories_and_the_figures(bot, index_dir, tmp_path):
    from tests.bot.test_cli import _run

    path = tmp_path / "stories.yml"
    path.write_text(CLEAR.replace("    - declined: true", "    - cited: item-18"), encoding="utf-8")
    done = _run(["test-stories", str(path)], index_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "失败的故事 / failed stories" in done.stdout and "# got: cited: None" in done.stdout
    assert "stories right 0.500" in done.stdout and "follow-ups resolved 1.000" in done.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("stories: [\n", encoding="utf-8")
    done = _run(["test-stories", str(bad)], index_dir)
    assert done.returncode == 2 and "cannot read stories" in done.stderr
