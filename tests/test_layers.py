"""The package's layers are its folders (issue 24, point 3), low to high:
``core`` < ``gpu`` < ``trt`` < ``workloads`` < ``load`` < ``baselines`` <
``gate`` < ``pipeline`` < ``relative`` < ``report`` < ``plugin`` < ``cli``.
A module imports only from its own folder and the folders below it, at the
top of the file, inside a function or under ``TYPE_CHECKING`` alike, and no
two modules import each other at import time. Read from the import lines
(the package uses absolute imports only: ruff TID252)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from helpers import REPO

PKG = REPO / "pytest_trtperf"
LAYERS = ("core", "gpu", "trt", "workloads", "load", "baselines", "gate", "pipeline", "relative", "report",
          "plugin", "cli")
#: Imports from a lower layer to a higher one that are still to go, as
#: (importing module, imported module). Empty is the goal; an entry here
#: that no longer happens fails too, so the list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module below ``pytest_trtperf``, at import time?) for each import."""
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body} | {id(n) for s in tree.body if isinstance(s, ast.If)
                                              and not _type_checking(s) for n in s.body}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pytest_trtperf"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("pytest_trtperf")]
        for name in names:
            short = name.removeprefix("pytest_trtperf").removeprefix(".")
            if short and _is_module(short):
                yield short, id(node) in top_level


def _type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _is_module(short: str) -> bool:
    base = PKG.joinpath(*short.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def layer(module: str) -> str:
    return module.split(".")[0]


def modules() -> dict[str, Path]:
    return {module_of(p): p for p in PKG.rglob("*.py")}


def test_every_folder_and_top_level_module_has_a_layer() -> None:
    placed = {layer(m) for m in modules() if m}
    assert placed <= set(LAYERS), f"place these in LAYERS (or in a folder that has one): {placed - set(LAYERS)}"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    upward = set()
    for module, path in modules().items():
        if not module:
            continue  # the package's __init__ re-exports the public names: it is the top
        for target, _ in imports(path):
            if LAYERS.index(layer(target)) > LAYERS.index(layer(module)):
                upward.add((module, target))
    assert upward - KNOWN_UPWARD == set(), "imports from a lower layer to a higher one"
    assert KNOWN_UPWARD - upward == set(), "gone (good): delete them from KNOWN_UPWARD"


def test_no_two_modules_import_each_other_at_import_time() -> None:
    graph = {m: {t for t, at_import in imports(p) if at_import and t != m} for m, p in modules().items() if m}
    seen: dict[str, int] = {}

    def cycle_from(m: str, stack: list[str]) -> list[str] | None:
        seen[m] = 1
        for t in sorted(graph.get(m, ())):
            if seen.get(t) == 1:
                return stack[stack.index(t):] + [t] if t in stack else [m, t]
            if t not in seen and (found := cycle_from(t, stack + [t])):
                return found
        seen[m] = 2
        return None

    for m in sorted(graph):
        if m not in seen and (found := cycle_from(m, [m])):
            raise AssertionError(f"import circle: {' -> '.join(found)}")


def test_the_checks_see_an_upward_import(tmp_path: Path) -> None:
    """The reader finds imports in every place the tests rely on."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nfrom pytest_trtperf.core import results\n"
                   "if TYPE_CHECKING:\n    from pytest_trtperf.gate.timing import judge\n"
                   "def f():\n    import pytest_trtperf.plugin.hooks\n")
    found = dict(imports(src))
    assert found == {"core": True, "core.results": True, "gate.timing": False, "plugin.hooks": False}
