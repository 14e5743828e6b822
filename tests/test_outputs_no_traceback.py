"""Nothing after measurement ends in a traceback (issue 16 item 3): each
session-end writer fails with one line naming its output and the terminal
says what was written; ``pytest-trtperf report`` checks a document before it
uses anything in it, and every error of the command is one line, exit 2."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from helpers import QUICK, spin_test
from pytest_trtperf import cli
from pytest_trtperf.report.document import Invalid, schema, validate
from pytest_trtperf.report.html import write_report
from test_report_html import entry_for, make


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real --trt-json document: one regression, one pass, one named result."""
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("doc")
    (d / "test_perf.py").write_text(spin_test() + "\n\ndef test_named(trt_bench):\n"
                                    "    trt_bench.measure(lambda: sum(range(300)), name='sum')\n")
    env = {**os.environ, "TRTPERF_TEST_SCALE": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "pytest", *QUICK, *a], cwd=d, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert run("--trt-baseline=update").returncode == 0
    env["TRTPERF_TEST_SCALE"] = "3"
    assert run("--trt-json=r.json", "--trt-tolerance=20%").returncode == 1
    return json.loads((d / "r.json").read_text())


def report(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any = None, raw: bytes | None = None,
           path: Path | None = None) -> tuple[int, str, str]:
    src = path or tmp_path / "in.json"
    if path is None:
        src.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    rc = cli.main(["report", str(src), "-o", str(tmp_path / "out.html")])
    out, err = capsys.readouterr()
    return rc, out, err


def test_report_from_a_real_document(document: dict[str, Any], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = report(tmp_path, capsys, document)
    assert (rc, err) == (0, "") and out == f"HTML report: {tmp_path / 'out.html'}\n"
    assert "regression" in (tmp_path / "out.html").read_text(encoding="utf-8")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]
    return mutate


#: (mutation, the field the one-line error must name). Each of these crashed
#: or was accepted silently before (issue 16 item 3), or would break rendering.
MUTATIONS = [
    (_set("results.0.verdict.metric", "fastest"), "results[0].verdict.metric"),
    (_set("results.0.latency_ms.median", "abc"), "results[0].latency_ms.median"),
    (_set("results.0.latency_ms.median_ci", [1.0]), "results[0].latency_ms.median_ci"),
    (_set("results.1.distribution.n", "10"), "results[1].distribution.n"),
    (_set("results.1.distribution.quantiles_ms", "1,2,3"), "results[1].distribution.quantiles_ms"),
    (_set("results.0.verdict.status", "PASS"), "results[0].verdict.status"),
    (_set("results.0.verdict", "regression"), "results[0].verdict"),
    (_set("results.0.layers", [1, 2]), "results[0].layers[0]"),
    (_set("results.0.location", ["t.py", "12"]), "results[0].location"),
    (_set("results.0.device_state.timeline", [[1, 2, 3]]), "results[0].device_state.timeline[0]"),
    (_set("results.0.extra_ms", {"h2d": {"n": 1}}), "results[0].extra_ms.h2d"),
    (_set("results.0.notes", "a note"), "results[0].notes"),
    (_set("results.0.throughput", True), "results[0].throughput"),
    (_set("results.0.warmup_iterations", -1), "results[0].warmup_iterations"),
    (_set("results.0.id", 42), "results[0].id"),
    (_drop("results.0.distribution"), "'distribution' is missing"),
    (_set("results", {"a": 1}), "results"),
    (_set("session.baseline_mode", "sideways"), "session.baseline_mode"),
    (_set("schema_version", True), "schema_version"),
    (_set("tool.name", "other-tool"), "tool.name"),
]


@pytest.mark.parametrize("mutation,field", MUTATIONS, ids=[f for _, f in MUTATIONS])
def test_malformed_documents_are_one_line_exit_2(document: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 mutation: Callable[[dict[str, Any]], None], field: str) -> None:
    doc = copy.deepcopy(document)
    mutation(doc)
    rc, out, err = report(tmp_path, capsys, doc)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("pytest-trtperf: error: ") and field in err, err
    assert str(tmp_path / "in.json") in err
    assert not (tmp_path / "out.html").exists()


@pytest.mark.parametrize("raw,what", [
    (b'{"schema_version": 1, "results": [{"latency_ms": {"median": NaN}}]}', "NaN is not JSON"),
    (b'{"schema_version": Infinity}', "Infinity is not JSON"),
    (b'{"schema_version": 1, "results": [', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[]", "the document: [] is not object"),
])
def test_unparsable_documents_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes,
                                                  what: str) -> None:
    rc, out, err = report(tmp_path, capsys, raw=raw)
    assert rc == 2 and err.count("\n") == 1 and what in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_document_that_is_not_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    for path, what in ((fifo, "is a FIFO"), (zero, "is a character device"),
                       (tmp_path / "none.json", "does not exist")):
        rc, out, err = report(tmp_path, capsys, path=path)
        assert rc == 2 and err.count("\n") == 1 and what in err, err


def test_the_validator_agrees_with_jsonschema(document: dict[str, Any]) -> None:
    """Our validator (no run-time dependency) rejects what the packaged JSON
    Schema rejects; the reference implementation decides."""
    jsonschema = pytest.importorskip("jsonschema")
    s = schema()
    reference = jsonschema.Draft202012Validator(s)
    assert not list(reference.iter_errors(document))
    validate(document, s)
    for mutation, field in MUTATIONS:
        doc = copy.deepcopy(document)
        mutation(doc)
        assert list(reference.iter_errors(doc)), field  # the case really is invalid
        with pytest.raises(Invalid):
            validate(doc, s)


def test_history_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b").mkdir()
    assert cli.main(["history", "--baseline-dir", str(tmp_path / "b"), "--max-commits", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-commits 0" in err


def test_report_that_cannot_render_is_one_line(tmp_path: Path) -> None:
    """A baseline entry holding what no run produces (constructed here, as a
    lax loader would let it through) costs the report, not the session."""
    r = make("m.py::test_vit", 12.0, status="regression")
    bad = dataclasses.replace(entry_for(r), latency="not statistics")
    out = tmp_path / "r.html"
    line = write_report(out, [r], {r.id: bad}, generated="now", baseline_mode="compare")
    assert line.startswith(f"HTML report NOT written: {out}: could not render it (AttributeError: ")
    assert "\n" not in line and not out.exists()


def test_every_writer_fails_with_its_own_line(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_perf=spin_test())
    blocker = pytester.path / "blocker"
    blocker.write_text("a file, not a directory")
    # A baseline location that cannot be written is found before measuring (issue 25).
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-baseline-dir=blocker/b")
    assert r.ret == 4 and "Traceback" not in r.stdout.str() + r.stderr.str()
    r.stderr.fnmatch_lines(["ERROR: baseline directory */blocker/b cannot be written: */blocker is not a directory; "
                            "point --trt-baseline-dir at a writable directory; nothing was measured"])
    # The other writers run after measuring; each says for itself why it could not write.
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(blocker / "summary.md"))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-baseline-dir=b",
                                      "--trt-json=blocker/r.json", "--trt-report=blocker/r.html")
    assert r.ret == 4
    text = r.stdout.str() + r.stderr.str()
    assert "Traceback" not in text
    r.stdout.fnmatch_lines(["--trt-json NOT written: */blocker/r.json: *",
                            "GitHub job summary NOT written: */blocker/summary.md: *",
                            "HTML report NOT written: */blocker/r.html: *"])


def test_terminal_lists_every_output_written(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_perf=spin_test())
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-json=r.json", "--trt-report=r.html")
    assert r.ret == 0
    r.stdout.fnmatch_lines(["baseline written: */.trtperf/*.json", f"--trt-json written: {pytester.path / 'r.json'}",
                            f"GitHub job summary appended to {summary}", f"HTML report: {pytester.path / 'r.html'}"])
    assert summary.stat().st_size > 0
