"""The README is part of the product: its examples run, and every option and
marker argument the plugin registers is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_trtperf.config import PERF_ARGS

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> dict[str, str]:
    """Python blocks of the README that start with ``# test_<name>.py``."""
    out = {}
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        first = block.splitlines()[0]
        m = re.fullmatch(r"# (test_\w+)\.py", first.strip())
        if m:
            out[m.group(1)] = block
    return out


def test_readme_has_runnable_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize("name", sorted(examples()))
def test_readme_example_runs(pytester: pytest.Pytester, name: str) -> None:
    text = examples()[name]
    pytester.makepyfile(**{name: text})
    # Examples that load C extensions (onnx, torch, TensorRT, cuda-python) run in their own
    # process: an in-process run drops the modules it imported, and a second import of such
    # an extension later in this worker crashes it.
    heavy = any(word in text for word in ("onnx", "torch", "trt_bench.engine(", "cuda.bindings"))
    run = pytester.runpytest_subprocess if heavy else pytester.runpytest
    r = run("--trt-baseline=update", "--trt-max-time=1", "--trt-min-time=0.2", "-p", "no:cacheprovider", "-rs")
    outcomes = r.parseoutcomes()
    # a module that skips as a whole collects nothing (exit status 5)
    assert r.ret == 0 or (r.ret == 5 and outcomes.get("skipped")), r.stdout.str()
    if outcomes.get("skipped") and not outcomes.get("passed"):
        # GPU examples skip here with one line saying what they need
        r.stdout.re_match_lines([r"SKIPPED \[\d+\] .*(needs|GPU|gpu).*"])
    elif "trt_bench.compare(" in examples()[name]:
        r.stdout.fnmatch_lines(["*pass*"])  # a relative gate is judged, and never becomes a baseline
        assert not (pytester.path / ".trtperf").exists()
    else:
        r.stdout.fnmatch_lines(["*updated*"])


def registered_options(pytester: pytest.Pytester) -> set[str]:
    r = pytester.runpytest("--help")
    return set(re.findall(r"(--trt-[a-z0-9-]+)", r.stdout.str()))


def test_every_option_is_in_the_readme(pytester: pytest.Pytester) -> None:
    text = README.read_text()
    options = registered_options(pytester)
    assert "--trt-baseline" in options
    missing = sorted(o for o in options if f"`{o}" not in text)
    assert missing == []


def test_every_marker_argument_is_in_the_readme() -> None:
    text = README.read_text()
    missing = sorted(a for a in PERF_ARGS if f"`{a}`" not in text)
    assert missing == []


def test_ci_runs_the_readme_set_up_commands_as_written() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    setup = [b.strip() for b in blocks if "pip install -e" in b]
    assert len(setup) == 2 and any("example_suite" in b for b in setup) and any("pytest tests" in b for b in setup)
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    for command in setup:
        assert command in ci, command


def _marker_calls(source: str) -> list[tuple[str, set[str]]]:
    """(marker name, keyword names) of every ``pytest.mark.trt_*(...)`` call in a code block."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # a fragment (``...`` placeholders, shell lines): nothing to check
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("trt_engine", "trt_perf") \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "mark":
            out.append((node.func.attr, {k.arg for k in node.keywords if k.arg is not None}))
    return out


def test_every_marker_argument_in_the_readme_exists() -> None:
    """No README snippet uses a marker argument the plugin would refuse (the
    hero example once said ``fp16=True``, which is a usage error)."""
    from dataclasses import fields

    from pytest_trtperf.trt.spec import EngineSpec

    known = {"trt_engine": {f.name for f in fields(EngineSpec)} - {"where"}, "trt_perf": set(PERF_ARGS)}
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    calls = [call for block in blocks for call in _marker_calls(block)]
    assert len(calls) >= 5
    bad = [(marker, sorted(kw - known[marker])) for marker, kw in calls if kw - known[marker]]
    assert not bad, bad
