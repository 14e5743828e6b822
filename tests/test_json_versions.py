"""The --trt-json document is versioned (issue 14.1, "schema bumped
compatibly"): version 2 added memory, groups, extra_info, params and relative
gates under ``additionalProperties: false``, so the version-1 schema rejects a
current document; readers (``report``, ``compare``) accept both versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_trtperf import cli
from pytest_trtperf.report.document import SCHEMA_FILES, read_document, schema
from pytest_trtperf.report.terminal import JSON_SCHEMA_VERSION

V1 = Path(__file__).parent / "data" / "trtperf-json-v1.json"


def test_the_writer_writes_the_newest_version_a_reader_knows() -> None:
    assert JSON_SCHEMA_VERSION == max(SCHEMA_FILES) == 2
    for version in SCHEMA_FILES:
        s = schema(version)
        assert s["properties"]["schema_version"]["const"] == version
        assert s["$id"] == f"urn:pytest-trtperf:trtperf-json:{version}"


def test_a_version_1_document_is_still_read_by_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = read_document(V1)
    assert [r.id for r in doc.results] == ["proj/test_perf.py::test_join", "proj/test_perf.py::test_sum::sum"]
    assert all(r.memory == {} and r.relative is None and r.group is None for r in doc.results)
    assert cli.main(["report", str(V1), "--baseline-dir", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == f"HTML report: {tmp_path / 'r.html'}\n"
    assert "test_sum" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_compare_reads_a_version_1_against_a_version_2_document(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    v2 = json.loads(V1.read_text())
    v2["schema_version"] = 2
    for r in v2["results"]:
        r.update(relative=None, memory={"host_peak_bytes": 0}, memory_verdict=None, group=None, extra_info={},
                 params={})
    (tmp_path / "b.json").write_text(json.dumps(v2))
    rc = cli.main(["compare", str(V1), str(tmp_path / "b.json")])
    out, err = capsys.readouterr()
    assert (rc, err) == (0, ""), err
    assert "test_sum" in out


def test_a_newer_version_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(V1.read_text())
    doc["schema_version"] = 3
    (tmp_path / "new.json").write_text(json.dumps(doc))
    assert cli.main(["report", str(tmp_path / "new.json"), "-o", str(tmp_path / "r.html")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert str(tmp_path / "new.json") in err and "schema_version 3" in err and "upgrade pytest-trtperf" in err


def test_each_document_validates_against_its_own_schema_only() -> None:
    """The jsonschema check README offers: the v1 document against the v1
    schema; the v2 schema rejects it (why the version had to change)."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(V1.read_text())
    jsonschema.validate(doc, schema(1), cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema(2), cls=jsonschema.Draft202012Validator)
