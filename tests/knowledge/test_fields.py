"""Field vocabularies are data (knowledge/fields/<field>.yml): each notice's metadata names its
field, the library merges common's with its notices' fields, and a missing or malformed file is
refused with its name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge.fields import COMMON, FIELDS_DIR, field_names, field_vocabulary, load_field
from knowledge.parser import NoticeParseError
from knowledge.store import NOTICES_DIR, load_library, write_notice

DATA = Path(__file__).resolve().parents[1] / "data" / "library"
SEED, HEXI, NANSHAN = "qingyuan-wlj-xuncha-2025", "hexi-wjj-xuncha-2025", "nanshan-jtj-xuncha-2024"


@pytest.mark.parametrize("name", [COMMON, *field_names()])
def test_every_field_file_reads(name):
    field = load_field(name)
    assert field.name == name and field.title
    assert field.services  # each says what its citizens ask for that no notice answers
    for words in (field.services, field.places, field.offices):
        assert len(set(words)) == len(words) and all(w == w.strip() and w for w in words)


def test_the_shipped_fields_are_the_three_bureaus_of_the_notices():
    assert {"culture-tourism-sports", "health", "transport"} <= set(field_names())


def test_each_field_has_its_own_services_on_top_of_the_common_ones():
    seed, health = field_vocabulary(["culture-tourism-sports"]), field_vocabulary(["health"])
    assert {"门票", "退票"} <= set(seed.services) and not {"挂号", "报销", "医保"} & set(seed.services)
    assert {"挂号", "报销", "医保"} <= set(health.services) and not {"门票", "退票"} & set(health.services)
    for field in (seed, health):
        assert {"身份证", "办理", "社保"} <= set(field.services)  # common's, in every field
    assert "景区" in seed.places and "医院" in health.offices and "医院" not in seed.offices
    common = field_vocabulary([None, ""])
    assert common == load_field(COMMON) and "门票" not in common.services


def test_merging_keeps_each_word_once_and_names_what_was_merged():
    both = field_vocabulary(["health", "culture-tourism-sports", "health"])
    assert both.name == "common+health+culture-tourism-sports"
    assert len(set(both.services)) == len(both.services)
    assert {"挂号", "门票", "身份证"} <= set(both.services)


def test_each_notice_names_its_field_and_the_library_merges_them():
    library = load_library(DATA)
    assert {doc: meta.field for doc, meta in library.meta.items()} == {HEXI: "health", NANSHAN: "transport"}
    assert library.fields == field_vocabulary(["health", "transport"])
    assert load_library(NOTICES_DIR).meta[SEED].field == "culture-tourism-sports"


def _copy_fields(tmp_path: Path) -> Path:
    folder = tmp_path / "fields"
    shutil.copytree(FIELDS_DIR, folder)
    return folder


def test_a_missing_field_file_names_the_file_and_the_fields_there_are(tmp_path):
    with pytest.raises(NoticeParseError) as caught:
        load_field("tax", _copy_fields(tmp_path))
    assert "tax.yml" in str(caught.value) and "health" in str(caught.value)


@pytest.mark.parametrize(
    "text, said",
    [("services: [挂号, 报销\n", "格式有误"),  # not YAML
     ("services: 挂号\n", "services"),  # a word, not a list
     ("services: [挂号, [报销]]\n", "services"),  # a list inside the list
     ("- 挂号\n- 报销\n", "列表名"),  # a list, not the three lists
     ("service: [挂号]\n", "未知的键")],  # a misspelt list would be silently empty
)
def test_a_malformed_field_file_is_refused_with_its_name(tmp_path, text, said):
    folder = _copy_fields(tmp_path)
    (folder / "broken.yml").write_text(text, encoding="utf-8")
    with pytest.raises(NoticeParseError) as caught:
        load_field("broken", folder)
    assert "broken.yml" in str(caught.value) and said in str(caught.value)


@pytest.mark.parametrize("name", ["../common", "Health", "health.yml", ""])
def test_a_field_name_is_a_plain_word(name):
    with pytest.raises(NoticeParseError):
        load_field(name)


def test_a_notice_naming_a_field_with_no_file_is_refused_when_the_library_loads(tmp_path):
    shutil.copytree(DATA / HEXI, tmp_path / HEXI)
    meta = tmp_path / HEXI / "notice.yml"
    meta.write_text(meta.read_text(encoding="utf-8").replace("field: health", "field: heath"), encoding="utf-8")
    with pytest.raises(NoticeParseError, match="heath.yml"):
        load_library(tmp_path)


def test_a_notice_with_no_field_gets_the_common_vocabulary(tmp_path):
    shutil.copytree(DATA / HEXI, tmp_path / HEXI)
    meta = tmp_path / HEXI / "notice.yml"
    meta.write_text(meta.read_text(encoding="utf-8").replace("field: health\n", ""), encoding="utf-8")
    library = load_library(tmp_path)
    assert library.meta[HEXI].field == "" and library.fields == load_field(COMMON)


def test_adding_a_notice_with_an_unknown_field_writes_nothing(tmp_path):
    text = (DATA / HEXI / "notice.txt").read_text(encoding="utf-8")
    meta = {"doc": "new-notice", "title": "关于市委第三轮巡察整改进展情况的通报", "issuer": "中共河西市卫生健康局党组",
            "date": "2025-06-20", "period_start": "2025-06-20", "period_end": "2025-07-19", "field": "no-such-field"}
    with pytest.raises(NoticeParseError, match="no-such-field.yml"):
        write_notice(tmp_path, text, meta)
    assert list(tmp_path.iterdir()) == []
    written = write_notice(tmp_path, text, dict(meta, field="health"))
    assert load_library(tmp_path).meta["new-notice"].field == "health" and written.name == "new-notice"


def test_add_notice_refuses_a_field_with_no_file_before_writing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bot.__main__ import cli

    monkeypatch.setenv("LIBRARY_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["add-notice", str(DATA / HEXI / "notice.txt"), "--doc", "new-notice",
                                      "--title", "关于市委第三轮巡察整改进展情况的通报", "--issuer", "中共河西市卫生健康局党组",
                                      "--date", "2025-06-20", "--period-end", "2025-07-19", "--field", "heath"])
    assert result.exit_code == 2 and "heath" in result.output and "health" in result.output  # the fields there are
    assert list(tmp_path.iterdir()) == []
