"""Habits the code keeps (issue 13 item 5 and friends), checked by reading the
package's source, so a regression fails here instead of in a later audit."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pytest_trtperf"

#: ``# type: ignore[...]`` / ``# pyright: ignore[...]`` and what follows it.
SUPPRESSION = re.compile(r"#\s*(?:type|pyright):\s*ignore(?:\[[^\]]*\])?(?P<rest>.*)$")

#: Suppressions allowed without a reason, per file (none).
NOT_YET_JUSTIFIED: dict[str, int] = {}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_type_check_suppression_says_why() -> None:
    bare: dict[str, list[str]] = {}
    for path in _sources():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = SUPPRESSION.search(line)
            if m is not None and not re.match(r"\s*#\s*\S", m.group("rest")):
                bare.setdefault(path.relative_to(PACKAGE).as_posix(), []).append(f"{lineno}: {line.strip()}")
    over = {name: lines for name, lines in bare.items() if len(lines) > NOT_YET_JUSTIFIED.get(name, 0)}
    assert not over, ("a type-check suppression needs a reason after it ('# type: ignore[x]  # why'), or remove it "
                      f"if pyright is clean without: {over}")


#: Reads of pytest's options outside config.py, by design (config.py's docstring):
#: pytest's and xdist's own options, never this plugin's.
OTHER_READERS = {"gpu/session.py": {"collectonly", "dist", "tx"}}


def test_only_config_reads_pytest_options() -> None:
    """One settings owner (issue 13 item 1): a ``getoption`` / ``getini`` /
    ``config.option.`` outside config.py is a second reader."""
    found: list[str] = []
    for path in _sources():
        name = path.relative_to(PACKAGE).as_posix()
        if name == "core/config.py":
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"\.(getoption|getini)\(\s*(?:[\"']([^\"']*)[\"'])?|\bconfig\.option\.\w+", text):
            allowed = OTHER_READERS.get(name, set())
            if m.group(0).startswith(".get") and m.group(2) in allowed:
                continue
            found.append(f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
    assert found == [], f"read options in config.py (Settings.from_pytest_config), not here: {found}"


def test_help_does_not_cite_files_the_wheel_lacks(pytester) -> None:
    """``bench/`` is not in the wheel: ``--help`` must stand on its own (issue 15)."""
    out = pytester.runpytest("--help").stdout.str()
    assert "--trt-tolerance" in out
    assert "bench/" not in out and "RESULTS.md" not in out


def test_every_markdown_file_the_package_cites_exists() -> None:
    """A docstring that points to a document points to one in this repository
    (``workloads/cuda.py`` cited a DESIGN.md that is not here)."""
    cited = {(path.relative_to(PACKAGE).as_posix(), m.group(0))
             for path in _sources()
             for m in re.finditer(r"[\w./-]+\.md\b", path.read_text(encoding="utf-8"))}
    assert cited, "the package cites README.md and bench/RESULTS.md"
    missing = sorted((name, doc) for name, doc in cited if not (REPO / doc).is_file())
    assert missing == []


def test_each_module_defines_its_public_names_once() -> None:
    import ast

    twice = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        n = sum(1 for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name) and target.id == "__all__")
        if n > 1:
            twice.append(path.relative_to(PACKAGE).as_posix())
    assert twice == []


def test_one_gpu_skip_gate() -> None:
    """The root conftest skips ``gpu`` tests when no CUDA device answers; the
    GPU tests' fixtures do not ask again (issue 13 item 5). Skips for other
    needs (torch built without CUDA) stay where they are."""
    assert "unavailable_reason()" in (REPO / "conftest.py").read_text(encoding="utf-8")
    cuda_check = re.compile(r"cuda\.unavailable_reason\(|gpu\.cuda import .*\bunavailable_reason\b")
    again = [p.relative_to(REPO).as_posix() for p in (REPO / "tests" / "gpu").rglob("*.py")
             if cuda_check.search(p.read_text(encoding="utf-8"))]
    assert again == []
