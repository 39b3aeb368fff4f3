"""The staff CLI (python -m bot), run as staff run it: a real subprocess on the real index."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DATA, REPO

pytestmark = pytest.mark.slow


def _run(args, index_dir, stdin=None, timeout=240):
    env = dict(os.environ, INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_json_lines_from_standard_input(bot, index_dir):
    questions = ["应急广播建设进展如何", "", "明天天气怎么样", "第十六条"]
    done = _run(["ask", "--json"], index_dir, stdin="\n".join(questions) + "\n")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3  # the empty line is skipped; one object per question, in order
    objects = [json.loads(line) for line in lines]
    assert [o["question"] for o in objects] == ["应急广播建设进展如何", "明天天气怎么样", "第十六条"]
    for o in objects:
        assert set(o) == {"question", "answer", "abstained", "citations"}
        assert len(o["citations"]) <= 3
    assert objects[0]["citations"][0]["anchor"] == "item-16"
    assert set(objects[0]["citations"][0]) == {"doc", "notice", "number", "heading", "path", "anchor", "passage", "quote", "quotes", "score"}
    assert objects[1]["abstained"] is True and objects[1]["citations"] == []
    assert objects[2]["citations"][0]["path"] == "二、（四）第16条"


def test_ask_prints_a_readable_answer(bot, index_dir):
    done = _run(["ask", "旅游厕所建了多少座"], index_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "旅游厕所368座" in done.stdout
    assert "[1] 二、（二）第4条" in done.stdout


def test_eval_reports_recall_and_misses(bot, index_dir, tmp_path):
    questions = tmp_path / "q.tsv"
    questions.write_text("question\texpected\tkind\n应急广播建设进展如何\titem-16\tplain\n"
                         "身份证补办\t-\toos\n旅游厕所建了多少座\titem-5\tnumeric\n", encoding="utf-8")
    done = _run(["eval", str(questions), "--json"], index_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["in_scope"] == 2 and report["out_of_scope"] == 1
    assert report["recall@1"] == 0.5 and report["abstention"] == 1.0
    [miss] = report["misses"]
    assert {k: miss[k] for k in ("question", "expected", "kind")} == {
        "question": "旅游厕所建了多少座", "expected": "item-5", "kind": "numeric"}
    assert miss["got"][0] == "item-4" and len(miss["got"]) == 3


def test_eval_rejects_a_malformed_file_with_a_usage_error(index_dir, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("q,e\n", encoding="utf-8")
    done = _run(["eval", str(bad)], index_dir, timeout=120)
    assert done.returncode == 2
    assert "question<TAB>expected" in done.stderr and "Traceback" not in done.stderr


def test_train_scope_refuses_the_held_out_file(index_dir):
    done = _run(["train-scope", "--questions", str(DATA / "questions_heldout.tsv")], index_dir, timeout=120)
    assert done.returncode == 2 and "held-out" in done.stderr


def test_shell_goes_through_the_dialogue_with_debug(bot, index_dir):
    done = _run(["shell", "--debug"], index_dir,
                stdin="你好\n应急广播建设进展如何\n连南那边呢？\n明天天气怎么样\n你们整改就是走过场吧\n/quit\n")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "您好" in out
    assert "#item-16" in out
    assert "连南应急广播系统" in out
    assert "intent:" in out and "fused" in out and "dense(rank)" in out
    # each turn's debug tells how the dialogue read it, as it decided, not a recomputation
    assert "追问 follow-up: 是（place），接着上一问“应急广播建设进展如何”" in out
    assert "检索的问题 searched: 明天天气怎么样" in out and "范围判断 scope: 不回答" in out
    assert "动作 action: action_complaint" in out and "0763-3375826" in out
