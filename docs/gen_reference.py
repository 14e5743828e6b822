"""Render docs/reference.md from the plugin's own tables, so the reference
cannot drift from the code.

    python docs/gen_reference.py           # rewrite docs/reference.md (the package installed: pip install -e .)
    python docs/gen_reference.py --check   # exit status 1 when docs/reference.md differs

What it reads: the option table (``OPTIONS``: every ``--trt-*`` option, its ini
key, default, values and help), the ``trt_perf`` marker arguments
(``PERF_ARGS``, defaults from ``MeasureOptions`` or the matching option), the
``trt_serve`` arguments (``SERVE_ARGS``), the ``trt_engine`` arguments (the
fields of ``EngineSpec``) and the ``--trt-json`` document's JSON Schema
(``pytest_trtperf/schemas/trtperf-json.schema.json``). The few sentences the
code does not hold (what a marker argument without an option means) are in
:data:`MARKER_TEXT` and :data:`SERVE_TEXT` below, and rendering fails when an
argument has none or a sentence names an argument that no longer exists.
``tests/test_docs_reference.py`` fails when docs/reference.md is not what this
script renders.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The option table.
from pytest_trtperf.plugin.options import OPTIONS
# trt_bench.serve() / trt_serve keywords.
from pytest_trtperf.plugin.markers import SERVE_ARGS
from pytest_trtperf.core.config import PERF_ARGS
from pytest_trtperf.trt.spec import EngineSpec

OUT = REPO / "docs" / "reference.md"
SCHEMA = REPO / "pytest_trtperf" / "schemas" / "trtperf-json.schema.json"
COMMAND = "python docs/gen_reference.py"

#: What a ``trt_perf`` argument means where no option of the same name says it
#: (an argument with an option takes that option's help). Keys must be
#: ``PERF_ARGS`` keys.
MARKER_TEXT: dict[str, str] = {
    "remeasure": "measure again to confirm a suspected regression (`False`: the command line's "
                 "`--trt-no-remeasure`)",
    "cuda_graph": "capture the enqueue in a CUDA graph (`False`: the command line's `--trt-no-cuda-graph`)",
    "group": "report label: tables show results in blocks per group (`--trt-group-by`); not part of how a "
             "result is measured or judged",
    "tolerance": "allowed slowdown, `\"5%\"` or `0.05`; a bare number is a fraction and must be <= 1 (`5` would "
                 "mean 500%, a gate that never fires, so it is refused with a hint)",
    "ab_confirm": "TensorRT from ONNX under git: confirm a regression against the baseline's own model, "
                  "interleaved ([relative-gates.md](relative-gates.md#confirming-a-regression-against-the-baselines"
                  "-own-model---trt-ab-confirm))",
}
#: Options a marker argument turns the other way round (``remeasure=False`` is ``--trt-no-remeasure``).
INVERTED = {"remeasure": "--trt-no-remeasure", "cuda_graph": "--trt-no-cuda-graph"}

#: What each ``trt_bench.serve()`` / ``trt_serve`` argument means (keys: ``SERVE_ARGS``).
SERVE_TEXT: dict[str, tuple[str, str]] = {
    "rate": ("required", "requests per second offered (LoadGen's target QPS)"),
    "concurrency": ("`1`", "execution slots: host threads, CUDA/torch streams, or TensorRT contexts"),
    "arrivals": ("`\"poisson\"`", "`\"poisson\"` (exponential gaps), `\"constant\"`, or a trace: arrival times "
                 "in seconds, replayed with its shape and stretched to `rate`"),
    "duration": ("`5`", "seconds measured at each rate (longer when that cannot bound the SLO's percentile)"),
    "warmup": ("20% of `duration`", "seconds of requests run first and not counted"),
    "slo": ("none", "`\"p99<20ms\"`: a percentile (`p50`, `p90`, `p95`, `p99`), `<` or `<=`, a time in `us`, "
            "`ms` or `s`"),
    "seed": ("`0`", "the arrival schedule's seed: two runs, and both sides of `compare`, send the same schedule"),
    "search": ("on with `slo`", "search the highest rate that meets the SLO"),
    "search_time": ("10 x (`duration` + `warmup`)", "seconds the search may take (it stops at the next run "
                    "boundary)"),
    "precision": ("`0.05`", "the search stops when its bracket is this narrow (5%)"),
}


def cell(text: Any) -> str:
    """Text for one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(value: Any) -> str:
    return f"`{value}`".replace("|", "\\|")


# -- options --------------------------------------------------------------------------
def option_default(opt: Any) -> str:
    if opt.kind == "bool":
        return "off"
    return "-" if opt.default is None else code(opt.default)


def ini_key(opt: Any) -> str:
    return getattr(opt, "ini", None) or opt.dest


def options_section() -> list[str]:
    out = ["## Options", "",
           "Every option is also an ini key (`[pytest]`, `[tool.pytest.ini_options]` or `setup.cfg`): the name "
           "without the leading dashes, with underscores. The command line wins over the ini file; a `trt_perf` "
           "marker wins over both. A bad value stops the session with one line naming the option or ini key "
           "([writing-tests.md](writing-tests.md#options)). Booleans in the ini file are `true`/`false` (also "
           "`yes`/`no`, `on`/`off`, `1`/`0`).", "",
           "| option | ini key | default | meaning |", "| --- | --- | --- | --- |"]
    for opt in OPTIONS:
        flag = opt.flag if opt.kind == "bool" or not opt.metavar else f"{opt.flag}={opt.metavar}"
        out.append(f"| {code(flag)} | {code(ini_key(opt))} | {option_default(opt)} | {cell(opt.help)} |")
    return out + [""]


# -- trt_perf marker --------------------------------------------------------------------
def marker_rows() -> list[str]:
    stale = sorted(set(MARKER_TEXT) - set(PERF_ARGS))
    if stale:
        raise SystemExit(f"docs/gen_reference.py: MARKER_TEXT names arguments PERF_ARGS lacks: {stale}")
    by_flag = {opt.flag: opt for opt in OPTIONS}
    rows = []
    for name, knob in PERF_ARGS.items():
        flag = "--trt-" + name.replace("_", "-")
        if flag not in by_flag:
            flag = INVERTED.get(name, flag)
        opt = by_flag.get(flag)
        text = MARKER_TEXT.get(name) or (opt.help if opt is not None else None)
        if text is None:
            raise SystemExit(f"docs/gen_reference.py: trt_perf argument {name!r} has no option and no MARKER_TEXT "
                             f"entry: add one sentence to MARKER_TEXT")
        shown_default = knob.default()  # the dataclass default as a user writes it (one definition)
        default = "-" if shown_default is None else code(shown_default)
        rows.append(f"| {code(name)} | {default} | {code(flag) if opt is not None else '-'} | {cell(text)} |")
    return rows


def marker_section() -> list[str]:
    return ["## `trt_perf` marker arguments", "",
            "`@pytest.mark.trt_perf(...)` on a test, class or module (the closest wins), and the same keywords "
            "of `trt_bench.measure()`, `trt_bench.compare()` and `trt_bench.serve()` (they win over the marker). "
            "Values are written as on the command line (`\"5%\"`, `0.05`). How to use them: "
            "[writing-tests.md](writing-tests.md#markers).", "",
            "| argument | default | option | meaning |", "| --- | --- | --- | --- |", *marker_rows(), ""]


def serve_section() -> list[str]:
    if set(SERVE_TEXT) != set(SERVE_ARGS):
        raise SystemExit(f"docs/gen_reference.py: SERVE_TEXT and SERVE_ARGS differ: "
                         f"{sorted(set(SERVE_TEXT) ^ set(SERVE_ARGS))}")
    rows = [f"| {code(name)} | {SERVE_TEXT[name][0]} | {cell(SERVE_TEXT[name][1])} |" for name in SERVE_ARGS]
    return ["## `trt_serve` marker and `trt_bench.serve()` arguments", "",
            "The serve configuration ([latency-under-load.md](latency-under-load.md)); other keywords of "
            "`trt_bench.serve()` are `trt_perf` arguments.", "",
            "| argument | default | meaning |", "| --- | --- | --- |", *rows, ""]


def engine_section() -> list[str]:
    rows = []
    for f in dataclasses.fields(EngineSpec):
        if f.name == "where":
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        shown = "-" if default in (None, (), {}) else code(list(default) if isinstance(default, tuple) else default)
        rows.append(f"| {code(f.name)} | {shown} |")
    return ["## `trt_engine` marker and `trt_bench.engine()` arguments", "",
            "Exactly one of `onnx=` and `engine=`. What each means, with its trtexec counterpart: "
            "[tensorrt.md](tensorrt.md#trt_engine-marker-arguments).", "",
            "| argument | default |", "| --- | --- |", *rows, ""]


# -- the --trt-json document ------------------------------------------------------------
def type_of(node: dict[str, Any]) -> str:
    """A schema node's type in a few words; ``$ref`` becomes a link to its table."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "const" in node:
        return code(json.dumps(node["const"]))
    if "enum" in node:
        return "one of " + ", ".join(code(json.dumps(v)) for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(type_of(n) for n in node[key])
    kind = node.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if k == "array" and isinstance(node.get("items"), dict):
            words.append(f"array of {type_of(node['items'])}")
        elif k == "object" and isinstance(node.get("additionalProperties"), dict) and "properties" not in node:
            words.append(f"object of {type_of(node['additionalProperties'])}")
        else:
            words.append(k)
    return " or ".join(words)


def field_rows(node: dict[str, Any], prefix: str) -> list[str]:
    """One row per property, nested objects and arrays of objects flattened into dotted paths."""
    rows = []
    required = set(node.get("required", ()))
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        need = "yes" if name in required else "no"
        rows.append(f"| {code(path)} | {cell(type_of(sub))} | {need} | {cell(sub.get('description', ''))} |")
        if "properties" in sub:
            rows += field_rows(sub, f"{path}.")
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in items:
            rows += field_rows(items, f"{path}[].")
    return rows


def json_section() -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    head = ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
    out = ["## The `--trt-json` document", "",
           f"From `{SCHEMA.relative_to(REPO).as_posix()}` (`pytest-trtperf schema` prints it): "
           f"{cell(schema.get('description', ''))} How to read and validate it: [json.md](json.md).", "",
           "### Document", "", *head, *field_rows(schema, ""), ""]
    for name, node in schema.get("$defs", {}).items():
        out += [f"### {name}", ""]
        if node.get("description"):
            out += [cell(node["description"]), ""]
        rows = field_rows(node, "")
        out += [*head, *rows, ""] if rows else [f"Type: {cell(type_of(node))}.", ""]
    return out


def render() -> str:
    lines = ["# Reference", "",
             f"<!-- Generated by `{COMMAND}` from the code; do not edit by hand. -->", "",
             "Every option, ini key, marker argument and `--trt-json` field, generated from the plugin's own "
             f"tables (`{COMMAND}`; `tests/test_docs_reference.py` fails when this page differs). "
             "Back to the [README](../README.md).", "",
             "- [Options](#options)", "- [`trt_perf` marker arguments](#trt_perf-marker-arguments)",
             "- [`trt_serve` marker and `trt_bench.serve()` arguments]"
             "(#trt_serve-marker-and-trt_benchserve-arguments)",
             "- [`trt_engine` marker and `trt_bench.engine()` arguments]"
             "(#trt_engine-marker-and-trt_benchengine-arguments)",
             "- [The `--trt-json` document](#the---trt-json-document)", "",
             *options_section(), *marker_section(), *serve_section(), *engine_section(), *json_section()]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render docs/reference.md from the plugin's own tables.")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/reference.md differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.is_file() else ""
        if current != text:
            print(f"docs/reference.md is out of date; regenerate it: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
