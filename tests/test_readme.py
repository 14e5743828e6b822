"""The README and the pages under docs/ are part of the product: their examples
run, their commands run in a fresh clone, and every option and marker argument
the plugin registers is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_trtperf.core.config import PERF_ARGS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def documents() -> list[Path]:
    """The README, then every page under docs/ (by name): the order in which the
    clone test runs their commands, so a page's commands may use what an earlier
    command of the same page wrote."""
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def doc_text() -> str:
    """README and docs/ pages as one text (what "documented" means)."""
    return "\n".join(path.read_text() for path in documents())


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO).as_posix()}:{line}"


def examples() -> dict[str, str]:
    """Python blocks of the README and docs/ pages that start with ``# test_<name>.py``."""
    out: dict[str, str] = {}
    for path in documents():
        for block in re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S):
            first = block.splitlines()[0]
            m = re.fullmatch(r"# (test_\w+)\.py", first.strip())
            if m:
                assert m.group(1) not in out, f"{path.name}: example {m.group(1)}.py appears twice"
                out[m.group(1)] = block
    return out


def test_readme_has_runnable_examples() -> None:
    assert len(examples()) >= 3


def _example_params() -> list[object]:
    """Each example by name; a serve example (a service that sleeps through
    its rate runs) holds no CPU slot (tests/cpu_slots.py)."""
    return [pytest.param(name, marks=pytest.mark.mostly_waits) if re.search(r"trt_bench\.serve\(|serve=", text) else name
            for name, text in sorted(examples().items())]


@pytest.mark.parametrize("name", _example_params())
def test_readme_example_runs(pytester: pytest.Pytester, name: str) -> None:
    text = examples()[name]
    pytester.makepyfile(**{name: text})
    # Examples that load C extensions (onnx, torch, TensorRT, cuda-python) run in their own
    # process: an in-process run drops the modules it imported, and a second import of such
    # an extension later in this worker crashes it.
    heavy = any(word in text for word in ("onnx", "torch", "trt_bench.engine(", "cuda.bindings"))
    run = pytester.runpytest_subprocess if heavy else pytester.runpytest
    # pytest-benchmark's fixture (README, "Running a pytest-benchmark suite unchanged") needs the opt-in
    compat = ["--trt-benchmark-compat"] if re.search(r"def test_\w+\(benchmark", text) else []
    # --trt-baseline-loaded=write: on a loaded machine an update is not written (issue 26), and
    # --trt-ignore-host-load: nor does a result wait for a quiet host (up to its busy_wait); these
    # tests are about the examples running, not about the load or the timings (short windows)
    r = run("--trt-baseline=update", "--trt-max-time=0.5", "--trt-min-time=0.05", "-p", "no:cacheprovider", "-rs",
            "--trt-baseline-loaded=write", "--trt-ignore-host-load", *compat)
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
    text = doc_text()
    options = registered_options(pytester)
    assert "--trt-baseline" in options
    missing = sorted(o for o in options if f"`{o}" not in text)
    assert missing == []


def test_every_marker_argument_is_in_the_readme() -> None:
    text = doc_text()
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
    blocks = re.findall(r"```python\n(.*?)```", doc_text(), flags=re.S)
    calls = [call for block in blocks for call in _marker_calls(block)]
    assert len(calls) >= 5
    bad = [(marker, sorted(kw - known[marker])) for marker, kw in calls if kw - known[marker]]
    assert not bad, bad


# -- every command of the README runs as written in a fresh clone -------------------------------

#: Commands the clone test runs, by how they start: the example suite, the
#: ``pytest-trtperf`` command, the example suite's scripts.
RUN_HERE = ("pytest example_suite", "pytest-trtperf ", "python example_suite/")
#: Commands it does not run, and why.
NOT_RUN = {
    "python3 -m pip install": "installs the project (the environment running this test has)",
    "pip install": "installs an extra",
    "ncu ": "needs Nsight Compute and a GPU",
}
#: What a command needs beyond the dev extras; without it the command (and its readers) is skipped.
NEEDS = {"--plan": "tensorrt", "plan-info": "tensorrt", "jsonschema": "jsonschema"}


def fenced_blocks(lang: str | None = None) -> list[tuple[str, str, str]]:
    """("file:line", language, text) of every fenced block (at the start of a
    line) of the README and docs/ pages, in :func:`documents` order (``lang``
    None: all)."""
    out = []
    for path in documents():
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^```(\w*)\s*$", lines[i])
            if m is None:
                i += 1
                continue
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            if lang is None or m.group(1) == lang:
                out.append((where(path, i + 1), m.group(1), "\n".join(lines[i + 1:j])))
            i = j + 1
    return out


def readme_steps() -> list[tuple[str, str, str]]:
    """In README-then-docs order: ("file:line", "sh", command) for each line of a
    bash block (``\\`` continuations joined), ("file:line", "py", code) for each
    python block that is a script (no test in it)."""
    steps = []
    for line, lang, text in fenced_blocks():
        if lang == "bash":
            for command in re.sub(r"\\\n\s*", " ", text).splitlines():
                if command.strip() and not command.lstrip().startswith("#"):
                    steps.append((line, "sh", command.strip()))
        elif lang == "python" and not re.search(r"^# test_|def test|@pytest", text, flags=re.M):
            steps.append((line, "py", text))
    return steps


def test_every_option_appears_in_a_readme_command() -> None:
    """Tables and prose are not enough: each option of ``options.OPTIONS`` is
    in at least one fenced code block of the README or a docs/ page (a command
    a user can copy)."""
    from pytest_trtperf.plugin.options import OPTIONS

    code = "\n".join(text for _, _, text in fenced_blocks())
    missing = [o.flag for o in OPTIONS if not re.search(re.escape(o.flag) + r"(?![\w-])", code)]
    assert missing == [], f"options in no code block of README.md or docs/: {missing}"


def test_every_readme_command_is_run_by_the_clone_test_or_says_why_not() -> None:
    """A new README command that works only in the author's project (``pytest
    --trt-...`` with no path) fails here: point it at the example suite."""
    commands = [(line, text) for line, kind, text in readme_steps() if kind == "sh"]
    assert len(commands) >= 30
    unknown = [(line, text) for line, text in commands if not text.startswith(RUN_HERE + tuple(NOT_RUN))]
    assert unknown == []


def _available(need: str) -> bool:
    if need == "jsonschema":
        import importlib.util

        return importlib.util.find_spec("jsonschema") is not None
    from pytest_trtperf.core.errors import BackendUnavailable
    from pytest_trtperf.trt.backend import load_backend

    try:
        load_backend("auto")
    except BackendUnavailable:
        return False
    return True


@pytest.mark.long
def test_readme_commands_run_in_a_fresh_clone(tmp_path: Path) -> None:
    """``git clone``, then every README command in README order, then each
    docs/ page's (pages by name), as written
    (bash), with short measuring times from ``PYTEST_ADDOPTS`` (a command's
    own options win). A gate may fire on a shared machine (exit status 1 with a
    regression or unreliable verdict); a usage error, a traceback or a missing
    file may not."""
    import os
    import shutil
    import subprocess
    import sys

    repo = README.parent
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=repo, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    # The working tree's README, docs, example suite and settings, so the test checks what is being changed.
    for name in ("README.md", "pyproject.toml", "conftest.py"):
        shutil.copy2(repo / name, clone / name)
    shutil.rmtree(clone / "docs", ignore_errors=True)
    shutil.copytree(repo / "docs", clone / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(clone / "example_suite")
    shutil.copytree(repo / "example_suite", clone / "example_suite",
                    ignore=shutil.ignore_patterns("*.onnx", "*.plan", "*.npy", "__pycache__"))
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "main"], cwd=clone, capture_output=True).returncode:
        subprocess.run(["git", "branch", "main"], cwd=clone, check=True)  # as in a clone of the project's main
    from pytest_trtperf.gpu.cuda import unavailable_reason

    gpu = unavailable_reason() is None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           # --trt-baseline-loaded=write: a shared machine's load must not leave a later command without
           # the baseline an earlier one wrote; --trt-ignore-host-load: nor make a command wait for a quiet
           # host (up to --trt-busy-wait, 10 s, per result; tests/test_host_load.py covers the watch). Short
           # windows: this test checks that commands run, not timings; 0.1 s still gives a compare the few
           # interleaved pairs an interval needs, or an unreliable verdict, which a gated command may end
           # with (a command's own options win)
           "PYTEST_ADDOPTS": "-p no:cacheprovider --trt-warmup-ms=5 --trt-min-time=0.02 --trt-max-time=0.1 "
                             "--trt-baseline-loaded=write --trt-ignore-host-load"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("GITHUB_ACTIONS", None)
    # The clone's modules are compiled once, not by each of its ~55 processes (where the environment
    # turns bytecode caching off, as this project's CI machine does); the clone is a temporary directory.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ran, skipped, done = 0, [], set()
    for line, kind, text in readme_steps():
        if kind == "sh" and not text.startswith(RUN_HERE):
            continue
        if text in done:  # the same command written on two pages: it ran as written already
            continue
        done.add(text)
        missing = sorted({need for key, need in NEEDS.items() if key in text and not _available(need)})
        if missing or ("on a GPU runner" in text and not gpu):
            skipped.append(f"{line} ({', '.join(missing) or 'GPU'})")
            continue
        argv = ["bash", "-c", text] if kind == "sh" else [sys.executable, "-c", text]
        proc = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        at = f"{line}: {text.splitlines()[0]}\n{out[-3000:]}"
        assert "Traceback (most recent call last)" not in out and "INTERNALERROR" not in out, at
        gated = text.startswith(("pytest example_suite", "pytest-trtperf compare"))
        assert proc.returncode == 0 or (gated and proc.returncode == 1
                                        and re.search(r"regressed|unreliable|slower than", out)), at
        ran += 1
    assert ran >= 30, (ran, skipped)
