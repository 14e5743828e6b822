"""Reading a ``--trt-json`` document back (``pytest-trtperf report``).

A document given to the command may come from anywhere (an artifact of a
fork's CI run, a hand edit), so nothing in it is used before it is checked
against the packaged JSON Schema of its ``schema_version`` (1 or 2), by a
small built-in validator (no ``jsonschema`` dependency at run time) that also
refuses NaN and Infinity
(JSON has neither; our writer writes ``null``). Any problem is one line
naming the file and the first field at fault.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.files import UnreadableFile, read_regular_file
from pytest_trtperf.core.results import Result

#: Largest document read: 2000 results are about 10 MB.
MAX_DOCUMENT_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Document:
    results: list[Result]
    baseline_mode: str
    baseline_dir: str | None


class Invalid(Exception):
    """``where`` (a JSON path such as ``results[3].verdict.metric``) and why."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where or 'the document'}: {why}")


#: The schema of each ``schema_version`` a reader accepts; the highest is what
#: the writer writes (``terminal.JSON_SCHEMA_VERSION``). Version 1 stays so a
#: document written before memory, groups and relative gates is still read.
SCHEMA_FILES = {1: "trtperf-json-v1.schema.json", 2: "trtperf-json.schema.json"}
CURRENT_VERSION = max(SCHEMA_FILES)


def schema_text(version: int = CURRENT_VERSION) -> str:
    """The JSON Schema of the ``--trt-json`` document (draft 2020-12)."""
    return resources.files("pytest_trtperf").joinpath(f"schemas/{SCHEMA_FILES[version]}").read_text(encoding="utf-8")


def schema(version: int = CURRENT_VERSION) -> dict[str, Any]:
    return json.loads(schema_text(version))


def document_version(doc: Any) -> int:
    """The schema version to check ``doc`` against: its own when this reader
    knows it, else the current one (whose check then names the field), and a
    :class:`UsageError` for a document from a newer pytest-trtperf."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if type(version) is int and version in SCHEMA_FILES:
        return version
    if type(version) is int and version > CURRENT_VERSION:
        raise UsageError(f"schema_version {version} was written by a newer pytest-trtperf (this one reads "
                         f"{', '.join(map(str, SCHEMA_FILES))}); upgrade pytest-trtperf")
    return CURRENT_VERSION


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (write null for a missing number)")


def read_document(path: Path) -> Document:
    """Parse, validate and convert a ``--trt-json`` document."""
    fix = "give the file pytest --trt-json=PATH wrote"
    try:
        raw = read_regular_file(path, limit=MAX_DOCUMENT_BYTES)
    except UnreadableFile as e:
        raise UsageError(f"{path} {e}; {fix}") from None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; {fix}") from None
    except (ValueError, RecursionError) as e:
        raise UsageError(f"{path} is not valid JSON ({str(e).splitlines()[0][:200]}); {fix}") from None
    try:
        version = document_version(doc)
    except UsageError as e:
        raise UsageError(f"{path}: {e}") from None
    try:
        validate(doc, schema(version))
        results = [Result.from_dict(d) for d in doc["results"]]
    except Invalid as e:
        raise UsageError(f"{path} is not a valid --trt-json document: {e}; {fix}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as e:  # what the schema cannot say
        raise UsageError(f"{path} is not a valid --trt-json document ({type(e).__name__}: {e}); {fix}") from None
    session = doc["session"]
    return Document(results=results, baseline_mode=session["baseline_mode"], baseline_dir=session["baseline_dir"])


# -- a JSON Schema subset: what trtperf-json.schema.json uses ------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    return type(a) is type(b) and a == b


def validate(value: Any, schema: Mapping[str, Any], *, root: Mapping[str, Any] | None = None,
             where: str = "") -> None:
    """Raise :class:`Invalid` unless ``value`` satisfies ``schema``. Supports
    ``$ref`` (to ``#/$defs``), ``type``, ``const``, ``enum``, ``oneOf``,
    ``required``, ``properties``, ``additionalProperties`` (a schema; ``false``
    is not enforced, so a newer writer's extra field is tolerated),
    ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``minimum``.
    The keywords are checked in that order of steps (reference, alternatives,
    the value itself, an object's fields, an array's items), so the first
    field at fault is the one named."""
    root = schema if root is None else root
    if "$ref" in schema:
        _check_ref(value, schema["$ref"], root, where)
    if "oneOf" in schema:
        _check_one_of(value, schema["oneOf"], root, where)
    _check_scalar(value, schema, where)
    if isinstance(value, dict):
        _check_object(value, schema, root, where)
    if isinstance(value, list):
        _check_array(value, schema, root, where)


def _check_ref(value: Any, ref: str, root: Mapping[str, Any], where: str) -> None:
    """``$ref``: only references into the schema's own ``$defs``."""
    assert ref.startswith("#/$defs/"), ref
    validate(value, root["$defs"][ref[len("#/$defs/"):]], root=root, where=where)


def _check_one_of(value: Any, options: list[Any], root: Mapping[str, Any], where: str) -> None:
    """``oneOf``: the first form that fits; else the one form's error when only
    one was a candidate, else a line saying none fits."""
    errors: list[Invalid] = []
    for option in options:
        try:
            validate(value, option, root=root, where=where)
            return
        except Invalid as e:
            # "null or X" with a value that is not null: X's error says more.
            if not (value is not None and option == {"type": "null"}):
                errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    raise Invalid(where, "matches none of the allowed forms")


def _check_scalar(value: Any, schema: Mapping[str, Any], where: str) -> None:
    """``type``, ``const``, ``enum`` and ``minimum``: the value itself."""
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            raise Invalid(where, f"{_show(value)} is not {' or '.join(types)}"
                          + (" (a finite number)" if "number" in types and isinstance(value, float) else ""))
    if "const" in schema and not _same(value, schema["const"]):
        raise Invalid(where, f"{_show(value)} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        raise Invalid(where, f"{_show(value)} is not one of {', '.join(map(str, schema['enum']))}")
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        raise Invalid(where, f"{_show(value)} is below {schema['minimum']}")


def _check_object(value: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], where: str) -> None:
    """``required``, then each field against ``properties`` or a schema-valued
    ``additionalProperties``."""
    for key in schema.get("required", ()):
        if key not in value:
            raise Invalid(where, f"{key!r} is missing")
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            validate(item, props[key], root=root, where=f"{where}.{key}" if where else key)
        elif isinstance(extra, dict):
            validate(item, extra, root=root, where=f"{where}.{key}" if where else key)


def _check_array(value: list[Any], schema: Mapping[str, Any], root: Mapping[str, Any], where: str) -> None:
    """``minItems``, ``maxItems``, then each item against ``prefixItems`` or ``items``."""
    if len(value) < schema.get("minItems", 0):
        raise Invalid(where, f"has {len(value)} item(s), fewer than {schema['minItems']}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise Invalid(where, f"has {len(value)} items, more than {schema['maxItems']}")
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        if sub is False:
            raise Invalid(where, f"has {len(value)} items, more than {len(prefix)}")
        if isinstance(sub, dict):
            validate(item, sub, root=root, where=f"{where}[{i}]")


def _show(value: Any) -> str:
    text = json.dumps(value, allow_nan=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
