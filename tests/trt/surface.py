"""The public surface of a TensorRT module, to hold the test double to the real API.

Three readers give one shape, ``{name: Entry}``:

* :func:`of_module`: a live module, the real ``tensorrt_rtx`` (pybind11: enum
  members, properties with or without a setter, signatures from docstrings,
  overloads) or the double itself (Python classes; attributes a class assigns
  in ``__init__`` count as settable properties).
* :func:`of_stubs`: ``tensorrt-stubs`` (TensorRT 10.13), read with ``ast``; enum
  values come from the ``# value = {...}`` comments the stub generator writes;
  a class also gets what its stub base classes define, and write-only
  properties (left out by the generator) come from the docstring's ``:ivar``.

:func:`compare` lists every way the double differs from a reference.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Entry:
    kind: str  # "enum" | "class" | "function" | "property" | "value"
    members: dict[str, int] = field(default_factory=dict)  # enum members
    attrs: dict[str, Entry] = field(default_factory=dict)  # class attributes
    signatures: list[tuple[str, ...]] = field(default_factory=list)  # parameter names per overload; [] = unknown
    settable: bool = False  # properties
    value: int | None = None  # enum-valued class constants (ILogger.ERROR)


# ----------------------------------------------------------------- live modules
def _doc_signatures(obj: Any, name: str) -> list[tuple[str, ...]]:
    """Parameter names of each overload in a pybind11 docstring."""
    doc = getattr(obj, "__doc__", None) or ""
    out = []
    for m in re.finditer(rf"(?:^|\n)\s*(?:\d+\. )?{re.escape(name)}\((.*?)\) ->", doc):
        out.append(tuple(p for p in _param_names(m.group(1)) if p != "self"))
    return out


def _param_names(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(<":
            depth += 1
        elif ch in "])>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.split(":")[0].split("=")[0].strip().lstrip("*") for p in parts if p.strip()]


def _python_signature(fn: Any) -> list[tuple[str, ...]]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    params = list(sig.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return []  # emulates overloads: not comparable by names
    return [tuple(p.name for p in params if p.name != "self")]


def _is_enum(cls: type) -> bool:
    return isinstance(getattr(cls, "__members__", None), dict) or isinstance(cls, enum.EnumMeta)


def _init_attrs(cls: type) -> set[str]:
    """Public attributes a Python class assigns to ``self`` in ``__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or not inspect.isfunction(init):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" and not t.attr.startswith("_"):
                    names.add(t.attr)
    return names


def _class_entry(cls: type, python: bool) -> Entry:
    if _is_enum(cls):
        return Entry("enum", members={k: int(v) for k, v in cls.__members__.items()})
    entry = Entry("class")
    if python:
        own = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.startswith("tests.fakes"):
                own.update(vars(klass))
        names = [n for n in own if not n.startswith("_")]
        skip = set(getattr(cls, "_FAKE_ONLY", ()))
        for n in _init_attrs(cls) - skip:
            entry.attrs[n] = Entry("property", settable=True)
        names = [n for n in names if n not in skip]
    else:
        names = [n for n in dir(cls) if not n.startswith("_")]
    for n in names:
        static = inspect.getattr_static(cls, n)
        if isinstance(static, property):
            entry.attrs[n] = Entry("property", settable=static.fset is not None)
        elif isinstance(static, type):
            entry.attrs[n] = _class_entry(static, python)
        elif isinstance(static, enum.Enum) or hasattr(static, "__int__") and not callable(static):
            entry.attrs[n] = Entry("value", value=int(static))
        elif callable(getattr(cls, n)):
            fn = getattr(cls, n)
            entry.attrs[n] = Entry("function", signatures=_python_signature(fn) if python else _doc_signatures(fn, n))
        else:
            entry.attrs[n] = Entry("property", settable=True)
    return entry


def of_module(module: Any, python: bool = False, skip: tuple[str, ...] = ()) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for name in dir(module):
        if name.startswith("_") or name in skip:
            continue
        obj = getattr(module, name)
        if isinstance(obj, type):
            if python and not obj.__module__.startswith("tests.fakes"):
                continue  # imported helpers (dataclasses, typing)
            out[name] = _class_entry(obj, python)
        elif callable(obj) and (not python or getattr(obj, "__module__", "").startswith("tests.fakes")):
            out[name] = Entry("function", signatures=_python_signature(obj) if python else _doc_signatures(obj, name))
    return out


# ------------------------------------------------------------------------ stubs
_MEMBER = re.compile(r"'(\w+)': <[\w.]+: (-?\d+)>")


def _stub_class(node: ast.ClassDef, lines: list[str]) -> Entry:
    members: dict[str, int] = {}
    entry = Entry("class")
    setters: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            name = item.target.id
            line = lines[item.lineno - 1]
            if name == "__members__":
                members = {k: int(v) for k, v in _MEMBER.findall(line)}
            elif not name.startswith("_") and "ClassVar" not in ast.unparse(item.annotation):
                entry.attrs[name] = Entry("property", settable=True)
            elif not name.startswith("_"):
                m = re.search(r"# value = <[\w.]+: (-?\d+)>", line)
                entry.attrs[name] = Entry("value", value=int(m.group(1)) if m else None)
        elif isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
            decorators = [ast.unparse(d) for d in item.decorator_list]
            if "property" in decorators:
                entry.attrs.setdefault(item.name, Entry("property"))
            elif any(d.endswith(".setter") for d in decorators):
                setters.add(item.name)
            else:
                e = entry.attrs.setdefault(item.name, Entry("function"))
                if not (item.args.vararg or item.args.kwarg):  # else: unknown (an invalid stub line)
                    e.signatures.append(tuple(a.arg for a in (*item.args.posonlyargs, *item.args.args,
                                                              *item.args.kwonlyargs) if a.arg != "self"))
        elif isinstance(item, ast.ClassDef):
            entry.attrs[item.name] = _stub_class(item, lines)
    for name in setters:
        if name in entry.attrs:
            entry.attrs[name].settable = True
    if members:
        return Entry("enum", members=members, attrs=entry.attrs)
    return entry


def find_stubs() -> Path | None:
    """``tensorrt_bindings/tensorrt.pyi`` of an installed ``tensorrt-stubs``."""
    import sys

    for entry in sys.path:
        p = Path(entry) / "tensorrt_bindings" / "tensorrt.pyi"
        if p.is_file():
            return p
    return None


def _parse_lenient(lines: list[str]) -> ast.Module:
    """Parse a stub whose generator wrote a few invalid lines (e.g.
    ``add_scale_nd``'s default before a required argument): each bad line
    becomes an ellipsis statement and parsing resumes."""
    lines = list(lines)
    for _ in range(100):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as exc:
            if exc.lineno is None:
                raise
            bad = lines[exc.lineno - 1]
            m = re.match(r"(\s*)def (\w+)\(.*:\s*$", bad)
            if m is None:
                raise
            lines[exc.lineno - 1] = f"{m.group(1)}def {m.group(2)}(self, *args, **kwargs):  # invalid in the stubs"
    raise SyntaxError("too many invalid lines in the stubs")


_IVAR = re.compile(r":ivar (\w+):")


def _write_only(node: ast.ClassDef, entry: Entry) -> None:
    """Properties without a getter (``Runtime.gpu_allocator``): the stub
    generator leaves them out, the class docstring's ``:ivar NAME:`` still
    documents them. A documented name that is declared nowhere is one."""
    for name in _IVAR.findall(ast.get_docstring(node) or ""):
        if not name.startswith("_") and name not in entry.attrs:
            entry.attrs[name] = Entry("property", settable=True)


def _inherit(out: dict[str, Entry], bases: dict[str, list[str]]) -> None:
    """A stub class lists only what it defines; the binding's class also has
    what its base classes define (``IGpuAsyncAllocator.reallocate``)."""
    def merged(name: str, seen: tuple[str, ...] = ()) -> dict[str, Entry]:
        attrs: dict[str, Entry] = {}
        for base in bases.get(name, []):
            if base in out and base not in seen:
                attrs.update(merged(base, seen + (name,)))
        attrs.update(out[name].attrs)
        return attrs

    for name in bases:
        if out[name].kind == "class":
            out[name].attrs = merged(name)


def of_stubs(path: Path) -> dict[str, Entry]:
    source = path.read_text()
    lines = source.splitlines()
    out: dict[str, Entry] = {}
    bases: dict[str, list[str]] = {}
    for node in _parse_lenient(lines).body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            out[node.name] = _stub_class(node, lines)
            _write_only(node, out[node.name])
            bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            names = tuple(a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs))
            out.setdefault(node.name, Entry("function")).signatures.append(names)
    _inherit(out, bases)
    return out


# ---------------------------------------------------------------------- compare
def compare(fake: dict[str, Entry], real: dict[str, Entry], where: str = "") -> list[str]:
    """Every name, signature, property kind and enum value of ``fake`` that
    ``real`` does not have the same way."""
    problems = []
    for name, f in sorted(fake.items()):
        path = f"{where}{name}"
        r = real.get(name)
        if r is None:
            problems.append(f"{path}: not in the real API")
            continue
        if f.kind == "enum":
            if r.kind != "enum":
                problems.append(f"{path}: an enum in the double, a {r.kind} in the real API")
            elif f.members != r.members:
                problems.append(f"{path}: members {f.members} != real {r.members}")
            continue
        if f.kind == "class":
            if r.kind not in ("class", "enum"):
                problems.append(f"{path}: a class in the double, a {r.kind} in the real API")
                continue
            problems += compare(f.attrs, r.attrs, f"{path}.")
            continue
        if f.kind == "property":
            if r.kind not in ("property", "value"):
                problems.append(f"{path}: an attribute in the double, a {r.kind} in the real API")
            elif f.settable and not r.settable:
                problems.append(f"{path}: settable in the double, read-only in the real API")
            elif r.settable and not f.settable:
                problems.append(f"{path}: read-only in the double, settable in the real API")
            continue
        if f.kind == "value":
            if r.value is not None and f.value != r.value:
                problems.append(f"{path}: value {f.value} != real {r.value}")
            continue
        if f.kind == "function":
            if r.kind != "function":
                problems.append(f"{path}: a method in the double, a {r.kind} in the real API")
            elif f.signatures and r.signatures and not any(s in r.signatures for s in f.signatures):
                problems.append(f"{path}{f.signatures[0]}: real signature(s) {r.signatures}")
    return problems
