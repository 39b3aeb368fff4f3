"""index/store.py: generations on disk, the last good index, one build at a time, and a folder
that cannot take a build said plainly. The storage tests need no model; the Retriever tests use
the small notice's real index."""

from __future__ import annotations

import errno
import json
import shutil

import pytest

from index.search import Retriever
from index.store import INDEX_FILES, IndexStorage, IndexUnusableError, IndexWriteError, write_error


def _write_dummy(tag: str):
    def write(folder):
        for name in INDEX_FILES:
            (folder / name).write_text(f"{tag} {name}", encoding="utf-8")
    return write


def _generation(storage: IndexStorage, tag: str, source) -> dict:
    return storage.write(_write_dummy(tag), [source], {"format": 1, "sources": {source.name: "x"}, "tag": tag})


def test_each_build_is_a_generation_and_the_one_before_stays_as_previous(tmp_path):
    source = tmp_path / "seed.txt"
    source.write_text("通报正文", encoding="utf-8")
    storage = IndexStorage(tmp_path / "build")
    for tag in ("one", "two", "three"):
        _generation(storage, tag, source)
    current, previous = storage.generations()
    assert json.loads((current / "manifest.json").read_text())["tag"] == "three"
    assert json.loads((previous / "manifest.json").read_text())["tag"] == "two"
    assert len(list(storage.folder.glob("gen-*"))) == 2  # the first is gone
    assert (current / "sources" / "seed.txt").read_text(encoding="utf-8") == "通报正文"
    assert storage.read_manifest(current, {"tag": "three"})["files"]["sources/seed.txt"]


def test_a_damaged_copy_of_a_source_makes_the_generation_unusable(tmp_path):
    source = tmp_path / "seed.txt"
    source.write_text("通报正文", encoding="utf-8")
    storage = IndexStorage(tmp_path / "build")
    _generation(storage, "one", source)
    (storage.current / "sources" / "seed.txt").write_text("改过", encoding="utf-8")
    with pytest.raises(IndexUnusableError, match="sources/seed.txt"):
        storage.read_manifest(storage.current, {})


def test_a_plain_folder_in_place_of_the_link_becomes_a_generation(tmp_path):
    """A build folder copied with its links followed (cp -rL, copytree) still takes a new build."""
    source = tmp_path / "seed.txt"
    source.write_text("通报正文", encoding="utf-8")
    storage = IndexStorage(tmp_path / "build")
    _generation(storage, "one", source)
    _generation(storage, "two", source)
    copied = IndexStorage(tmp_path / "copy")
    shutil.copytree(storage.folder, copied.folder)
    assert not copied.current.is_symlink()
    _generation(copied, "three", source)
    current, previous = copied.generations()
    assert json.loads((current / "manifest.json").read_text())["tag"] == "three"
    assert json.loads((previous / "manifest.json").read_text())["tag"] == "two"


def test_the_build_lock_is_seen_while_held(tmp_path):
    storage = IndexStorage(tmp_path / "build")
    assert not storage.build_running()
    with storage.build_lock():
        assert storage.build_running()
    assert not storage.build_running()


def test_a_folder_without_room_is_refused_before_the_build(tmp_path):
    storage = IndexStorage(tmp_path / "build")
    with pytest.raises(IndexWriteError, match="磁盘空间不足") as caught:
        storage.check_writable(need_bytes=10**18)
    assert caught.value.errno == errno.ENOSPC
    storage.check_writable(need_bytes=1)  # room enough: no error


@pytest.mark.parametrize("code, words", [(errno.EROFS, "只读"), (errno.EACCES, "只读"), (errno.ENOSPC, "磁盘已满"),
                                         (errno.EIO, "无法写入")])
def test_write_errors_are_said_plainly(tmp_path, code, words):
    error = write_error(OSError(code, "x"), tmp_path)
    assert words in str(error) and " / " in str(error) and error.errno == code


def test_the_build_status_is_kept(tmp_path):
    storage = IndexStorage(tmp_path / "build")
    storage.folder.mkdir()
    assert storage.last_build() == {}
    storage.record("failed", "磁盘已满 / disk full")
    assert storage.last_build()["state"] == "failed" and "磁盘已满" in storage.last_build()["error"]


# ---- the Retriever on the last good index --------------------------------------------------------


def _copies(small_index, tmp_path):
    library = tmp_path / "notices"
    shutil.copytree(small_index.library_dir, library)
    build = tmp_path / "build"
    shutil.copytree(small_index.build_dir, build)
    return library, build


def test_changed_notices_are_answered_from_the_index_as_built_until_rebuilt(small_index, tmp_path):
    library, build = _copies(small_index, tmp_path)
    text_file = library / "notice_small.txt"
    built_text = text_file.read_text(encoding="utf-8")
    text_file.write_text(built_text.replace("防溺水", "防火灾"), encoding="utf-8")
    last_good = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    last_good.load_last_good()
    assert last_good.stale and not last_good.is_current()
    # The notice's text is the one the index was built from, so quotes and offsets agree.
    served = last_good.library.notices["notice_small"].text
    assert "防溺水" in served and "防火灾" not in served
    assert last_good.search("防溺水教育怎么做的", top_k=1)[0].chunk.anchor == "item-7"
    assert last_good.build_if_needed() is not None
    fresh = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    fresh.load_last_good()
    assert not fresh.stale and "防火灾" in fresh.library.notices["notice_small"].text
    assert fresh.build_if_needed() is None  # current now: nothing to do


def test_a_damaged_newest_build_falls_back_to_the_one_before(small_index, tmp_path):
    library, build = _copies(small_index, tmp_path)
    Retriever(small_index.embedder, library_dir=library, build_dir=build).rebuild()
    storage = IndexStorage(build)
    assert len(storage.generations()) == 2
    damaged = storage.current / "chunks.faiss"
    damaged.write_bytes(damaged.read_bytes()[:100])
    last_good = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    last_good.load_last_good()
    assert not last_good.stale  # the build before had the same notices
    assert last_good.search("防溺水教育怎么做的", top_k=1)[0].chunk.anchor == "item-7"


def test_a_notice_broken_on_disk_leaves_the_last_good_index_answering(small_index, tmp_path):
    library, build = _copies(small_index, tmp_path)
    (library / "notice_small.yml").unlink()  # a staff mistake: the metadata is gone
    last_good = Retriever(small_index.embedder, library_dir=library, build_dir=build)
    last_good.load_last_good()
    assert last_good.stale
    assert last_good.search("防溺水教育怎么做的", top_k=1)[0].chunk.anchor == "item-7"


def test_no_intact_index_is_said_plainly(small_index, tmp_path):
    _library, build = _copies(small_index, tmp_path)
    for file in IndexStorage(build).current.glob("*.faiss"):
        file.write_bytes(b"")
    with pytest.raises(IndexUnusableError, match="已损坏"):
        Retriever(small_index.embedder, library_dir=small_index.library_dir, build_dir=build).load_last_good()
