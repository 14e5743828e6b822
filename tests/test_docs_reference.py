"""docs/reference.md is generated from the code (docs/gen_reference.py), and the
README stays a tutorial: a line budget, a table of contents, and no option
that the plugin does not have."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
REFERENCE = REPO / "docs" / "reference.md"
#: The README teaches; the reference lives in docs/ (issue 24, point 6).
README_MAX_LINES = 600


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_what_the_generator_renders() -> None:
    gen = generator()
    expected = gen.render()
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.is_file() else ""
    assert current == expected, f"docs/reference.md is out of date; regenerate it: {gen.COMMAND}"


def test_check_mode_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    gen = generator()
    stale = tmp_path / "reference.md"
    stale.write_text(gen.render().replace("--trt-tolerance", "--trt-tolerence"), encoding="utf-8")
    monkeypatch.setattr(gen, "OUT", stale)
    assert gen.main(["--check"]) == 1
    assert "python docs/gen_reference.py" in capsys.readouterr().err
    stale.write_text(gen.render(), encoding="utf-8")
    assert gen.main(["--check"]) == 0


def test_reference_holds_every_option_marker_argument_and_json_field() -> None:
    """Each table the plugin has, row by row, in the generated page."""
    import json
    from dataclasses import fields

    from pytest_trtperf.trt.spec import EngineSpec

    gen = generator()
    text = gen.render()
    rows = set(re.findall(r"^\| `([^`]+)`", text, flags=re.M))
    flags = {row.split("=", 1)[0] for row in rows}
    assert {opt.flag for opt in gen.OPTIONS} <= flags
    assert set(gen.PERF_ARGS) | set(gen.SERVE_ARGS) | {f.name for f in fields(EngineSpec)} - {"where"} <= rows
    schema = json.loads((REPO / "pytest_trtperf" / "schemas" / "trtperf-json.schema.json").read_text())
    assert set(schema["properties"]) <= rows
    assert set(schema["$defs"]["verdict"]["properties"]) <= rows
    assert all(f"### {name}" in text for name in schema["$defs"])


def test_a_marker_argument_without_words_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new ``trt_perf`` argument with no option of its name must get its
    sentence in the generator, or the reference is not rendered."""
    gen = generator()
    monkeypatch.setitem(gen.PERF_ARGS, "brand_new", ("metric", lambda v, w: v))
    with pytest.raises(SystemExit, match="brand_new"):
        gen.render()


def test_readme_fits_its_budget_and_has_a_table_of_contents() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (budget {README_MAX_LINES}): move reference text to a docs/ page")
    sections = []
    fence = False
    for line in lines:
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("## ") and line[3:] != "Contents":
            sections.append(line[3:])
    text = "\n".join(lines)
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    slugs = set(re.findall(r"\]\(#([\w-]+)\)", contents))

    def slug(title: str) -> str:
        return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")

    missing = [s for s in sections if slug(s) not in slugs]
    assert len(sections) >= 6 and missing == [], f"sections missing from README's Contents: {missing}"


def _documents() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def test_every_option_the_documentation_names_exists() -> None:
    """README and docs/ name only options the plugin registers (a renamed or
    removed option leaves no stale command behind)."""
    known = {flag for opt in generator().OPTIONS for flag in (opt.flag, opt.negative) if flag}  # the table (older negative spellings too)
    named = {(path.name, m.group(0).rstrip("-"))
             for path in _documents()
             for m in re.finditer(r"(?<![\w#-])--trt-[a-z0-9][a-z0-9-]*", path.read_text(encoding="utf-8"))}
    assert any(path == "README.md" for path, _ in named)
    unknown = sorted((path, flag) for path, flag in named if flag not in known)
    assert unknown == []


def test_every_relative_link_of_the_documentation_resolves() -> None:
    """Moving text between README and docs/ pages must not leave a link to a
    page or heading that is not there."""

    def anchors(path: Path) -> set[str]:
        out, fence = set(), False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                fence = not fence
            elif not fence and (m := re.match(r"^#{1,6} (.*)$", line)):
                out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
        return out

    broken = []
    for path in _documents():
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{path.name}: {target}")
    assert broken == []
