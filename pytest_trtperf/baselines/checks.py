"""Field-by-field checks of one baseline entry as read from JSON.

A baseline file arrives through pull requests, so its numbers are input, not
trusted data: a NaN, zero or negative quantile made the old gate compute an
infinite change with a NaN interval and call a 4.6x slower run a pass. Every
field the gate, the reports or the next ``update`` use is checked here for
type, finiteness, sign and size; the first problem is raised as
:class:`FieldError` naming the field (``distribution.quantiles_ms[3]``), which
``baseline.read_file`` turns into one line naming the file and the entry.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Mapping, Sequence

from pytest_trtperf.core import metrics
from pytest_trtperf.core.identity import config_hash as hash_of_config

#: Size limits: far above what the plugin writes (101 quantiles, up to 10
#: million samples, a few thousand layers), far below what exhausts memory.
MAX_QUANTILES = 1001
MAX_SAMPLES = 10 ** 9
MAX_LAYERS = 100_000
MAX_FLAGS = 64
MAX_TEXT = 4096
MAX_HISTORY = 100
#: Largest timing accepted, in ms: 1e7 ms is 2.8 hours for one iteration, far
#: above anything a test times, far below where ratios of timings (the gate's
#: change, its logarithms) stop being finite.
MAX_MS = 1e7
#: The figures of one run (``latency_ms``, the median of ``distribution``, the
#: last ``history`` row, ``throughput`` beside that row's) must agree within
#: this factor. The plugin writes them from the same samples: they agree to the
#: 6 significant digits of the quantiles (every committed file on our machines:
#: exactly, or within 5e-6). The gate scales its change by the latest run's value
#: over the centre of the history, so one figure edited on its own (a median set
#: to 1/1000 made a 3x slower run "improve" by 99.7%) moves the verdict by up to
#: this factor: 1% keeps that under the default 5% tolerance while leaving room
#: for rounding by hand or by another JSON writer.
AGREEMENT = 1.01


class FieldError(ValueError):
    """``field``: the dotted path of the bad value; ``problem``: what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def obj(d: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise FieldError(field, f"must be an object, got {_show(d)}")
    return d


def get(d: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in d:
        raise FieldError(f"{field}.{key}" if field else key, "is missing")
    return d[key]


def number(value: Any, field: str, *, positive: bool = False, minimum: float = 0.0,
           maximum: float = math.inf) -> float:
    """A finite real number (not a bool, not a string) >= ``minimum``, or > 0
    with ``positive``, and <= ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(field, f"must be a number, got {_show(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise FieldError(field, f"is too large ({str(value)[:20]}...)") from None
    if not math.isfinite(out):
        raise FieldError(field, f"must be a finite number, got {_show(value)}")
    if positive and out <= 0:
        raise FieldError(field, f"must be > 0, got {_show(value)}")
    if out < minimum:
        raise FieldError(field, f"must be >= {minimum:g}, got {_show(value)}")
    if out > maximum:
        raise FieldError(field, f"must be at most {maximum:g}, got {_show(value)}")
    return out


def timing(value: Any, field: str, *, positive: bool = False) -> float:
    """A timing in ms: a finite number >= 0 (> 0 with ``positive``), at most ``MAX_MS``."""
    return number(value, field, positive=positive, maximum=MAX_MS)


def optional_number(value: Any, field: str, *, positive: bool = False) -> float | None:
    return None if value is None else number(value, field, positive=positive)


def integer(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"must be a whole number, got {_show(value)}")
    if not low <= value <= high:
        raise FieldError(field, f"must be between {low} and {high}, got {_show(value)}")
    return int(value)


def text(value: Any, field: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {_show(value)}")
    if len(value) > MAX_TEXT:
        raise FieldError(field, f"is longer than {MAX_TEXT} characters")
    return value


def texts(value: Any, field: str, *, limit: int = MAX_FLAGS) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise FieldError(field, f"must be a list of strings, got {_show(value)}")
    if len(value) > limit:
        raise FieldError(field, f"has {len(value)} items (at most {limit})")
    return tuple(str(text(v, f"{field}[{i}]")) for i, v in enumerate(value))


def json_scalar(value: Any, field: str) -> Any:
    """None, a bool, a string or a finite number, returned as it is (ints stay ints)."""
    if value is None or isinstance(value, (bool, str)):
        return text(value, field) if isinstance(value, str) else value
    number(value, field, minimum=-math.inf)
    return value


def json_value(value: Any, field: str, depth: int = 0) -> Any:
    """Configuration identities: nested objects and lists of JSON scalars,
    finite numbers only, bounded depth."""
    if depth > 8:
        raise FieldError(field, "is nested too deeply")
    if isinstance(value, Mapping):
        if len(value) > 1000:
            raise FieldError(field, "has too many keys")
        return {str(k): json_value(v, f"{field}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 10_000:
            raise FieldError(field, "has too many items")
        return [json_value(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    return json_scalar(value, field)


# -- the parts of an entry ------------------------------------------------------

SERIES_FIELDS = ("median", "mean", "min", "max", "p90", "p95", "p99", "stdev")
#: Gate metrics that must be > 0 (a ratio is taken of them): the time
#: metrics of the registry, which every history row keeps.
POSITIVE = tuple(m.name for m in metrics.TIMING if m.unit == metrics.TIME)


def series(d: Any, field: str) -> dict[str, Any]:
    """``latency_ms``: the gated statistics must be finite and > 0."""
    d = obj(d, field)
    out: dict[str, Any] = {"n": integer(get(d, "n", field), f"{field}.n", low=1, high=MAX_SAMPLES)}
    for key in SERIES_FIELDS:
        out[key] = timing(get(d, key, field), f"{field}.{key}", positive=key in POSITIVE)
    ci = get(d, "median_ci", field)
    if not isinstance(ci, list) or len(ci) != 2:
        raise FieldError(f"{field}.median_ci", f"must be a list of two numbers, got {_show(ci)}")
    out["median_ci"] = tuple(timing(v, f"{field}.median_ci[{i}]") for i, v in enumerate(ci))
    return out


def distribution(d: Any, field: str = "distribution") -> tuple[int, tuple[float, ...]]:
    """(n, quantiles): 2..1001 finite quantiles >= 0 in ascending order, the
    median among them > 0."""
    d = obj(d, field)
    n = integer(get(d, "n", field), f"{field}.n", low=1, high=MAX_SAMPLES)
    qs = get(d, "quantiles_ms", field)
    if not isinstance(qs, list):
        raise FieldError(f"{field}.quantiles_ms", f"must be a list of numbers, got {_show(qs)}")
    if not 2 <= len(qs) <= MAX_QUANTILES:
        raise FieldError(f"{field}.quantiles_ms", f"has {len(qs)} values (2 to {MAX_QUANTILES})")
    out = tuple(timing(q, f"{field}.quantiles_ms[{i}]") for i, q in enumerate(qs))
    for i in range(1, len(out)):
        if out[i] < out[i - 1]:
            raise FieldError(f"{field}.quantiles_ms[{i}]", f"is below the one before ({out[i]:g} < {out[i - 1]:g}); "
                             f"quantiles must ascend")
    if out[len(out) // 2] <= 0:
        raise FieldError(f"{field}.quantiles_ms", "has a median of 0; timings must be > 0")
    return n, out


def layers(value: Any, field: str = "layers") -> tuple[dict[str, Any], ...]:
    """Per-layer profile rows: ``name`` (string), ``ms`` (finite, >= 0), other
    keys JSON scalars."""
    if not isinstance(value, list):
        raise FieldError(field, f"must be a list, got {_show(value)}")
    if len(value) > MAX_LAYERS:
        raise FieldError(field, f"has {len(value)} rows (at most {MAX_LAYERS})")
    out = []
    for i, row in enumerate(value):
        f = f"{field}[{i}]"
        row = obj(row, f)
        checked = {str(k): json_scalar(v, f"{f}.{k}") for k, v in row.items()}
        text(get(row, "name", f), f"{f}.name")
        timing(get(row, "ms", f), f"{f}.ms")
        out.append(checked)
    return tuple(out)


def history_row(d: Any, field: str) -> dict[str, Any]:
    """One past ``update`` run: when, where, and its metric values."""
    d = obj(d, field)
    out: dict[str, Any] = {
        "timestamp": text(get(d, "timestamp", field), f"{field}.timestamp"),
        "git_commit": text(d.get("git_commit"), f"{field}.git_commit", optional=True),
        "machine": text(d.get("machine"), f"{field}.machine", optional=True),
        "n": integer(get(d, "n", field), f"{field}.n", low=1, high=MAX_SAMPLES),
        "throughput": number(get(d, "throughput", field), f"{field}.throughput", positive=True),
        "flags": texts(d.get("flags", []), f"{field}.flags"),
    }
    for key in POSITIVE:
        out[key] = timing(get(d, key, field), f"{field}.{key}", positive=True)
    return out


def history(value: Any, field: str = "history") -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise FieldError(field, f"must be a list, got {_show(value)}")
    if not 1 <= len(value) <= MAX_HISTORY:
        raise FieldError(field, f"has {len(value)} runs (1 to {MAX_HISTORY})")
    return tuple(history_row(row, f"{field}[{i}]") for i, row in enumerate(value))


def config_hash(value: Any, field: str = "config_hash") -> str:
    """The configuration hash: 1 to 64 lowercase hex digits (``identity.config_hash``
    writes 16). It is printed in verdicts, so nothing else may pass."""
    out = str(text(value, field))
    if not 1 <= len(out) <= 64 or any(c not in "0123456789abcdef" for c in out):
        raise FieldError(field, f"must be a short lowercase hex string (as pytest-trtperf writes it), "
                                f"got {_show(value)}")
    return out


def median_of(quantiles: Sequence[float]) -> float:
    """The median of a quantile function stored at evenly spaced probabilities
    (the middle value, or the mean of the two middle ones)."""
    k = len(quantiles) - 1
    return quantiles[k // 2] if k % 2 == 0 else (quantiles[k // 2] + quantiles[k // 2 + 1]) / 2.0


def _agree(field: str, value: float, other_field: str, other: float) -> None:
    if max(value / other, other / value) > AGREEMENT:
        raise FieldError(field, f"is {value:.6g} but {other_field} is {other:.6g}: the figures of one run must "
                                f"agree within {AGREEMENT - 1:.0%} (was one of them edited?)")


def _within(field: str, value: float, low: float, high: float, what: str) -> None:
    if not low / AGREEMENT <= value <= high * AGREEMENT:
        raise FieldError(field, f"is {value:.6g}, outside {what} ({low:.6g}..{high:.6g}): the figures of one run "
                                f"must agree (was one of them edited?)")


#: Percentiles of ``latency_ms`` and the probability each sits at.
PERCENTILES = (("p90", 0.90), ("p95", 0.95), ("p99", 0.99))


def spread(lat: Mapping[str, Any], quantiles: Sequence[float]) -> None:
    """The spread figures of one run agree with its quantile function, which
    the gate's bootstrap redraws from: the first and last quantiles are the
    minimum and maximum (``stats.compress`` stores probabilities 0..1), each
    percentile lies between the two quantiles around its probability, the
    median's interval holds the median, and the mean and the interval lie
    within min..max. Tails edited on their own (the lower half set to 1e-6,
    the upper to 1e6: a 3x slowdown read "within this run's own noise (99% CI
    -100%..+3767019%)") fail here, naming the field."""
    lo, hi = lat["min"], lat["max"]
    q = "distribution.quantiles_ms"
    _within(f"{q}[0]", quantiles[0], lo, lo, "latency_ms.min")
    _within(f"{q}[{len(quantiles) - 1}]", quantiles[-1], hi, hi, "latency_ms.max")
    k = len(quantiles) - 1
    for key, p in PERCENTILES:
        a, b = quantiles[math.floor(p * k)], quantiles[math.ceil(p * k)]
        _within(f"latency_ms.{key}", lat[key], a, b, f"the quantiles around p={p:g} in {q}")
    ci_lo, ci_hi = lat["median_ci"]
    _within("latency_ms.median_ci[0]", ci_lo, lo, lat["median"], "latency_ms.min..latency_ms.median")
    _within("latency_ms.median_ci[1]", ci_hi, lat["median"], hi, "latency_ms.median..latency_ms.max")
    _within("latency_ms.mean", lat["mean"], lo, hi, "latency_ms.min..latency_ms.max")
    if lat["stdev"] > (hi - lo) * AGREEMENT * 0.75 + 1e-9 * hi:  # a sample's sd is at most (max - min) * sqrt(n / (n - 1)) / 2
        raise FieldError("latency_ms.stdev", f"is {lat['stdev']:.6g}, more than the range min..max allows "
                                             f"({lo:.6g}..{hi:.6g}) (was one of them edited?)")


def row_order(rows: Sequence[Mapping[str, Any]]) -> None:
    """Each history row's percentiles ascend (median <= p90 <= p95 <= p99)."""
    for i, row in enumerate(rows):
        for a, b in (("median", "p90"), ("p90", "p95"), ("p95", "p99")):
            if row[b] * AGREEMENT < row[a]:
                raise FieldError(f"history[{i}].{b}", f"is {row[b]:.6g}, below its {a} {row[a]:.6g}: percentiles "
                                                      f"ascend (was the row edited?)")


def agreement(lat: Mapping[str, Any], n: int, quantiles: Sequence[float], throughput: float,
              rows: Sequence[Mapping[str, Any]]) -> None:
    """The figures of the entry's run agree with each other (``AGREEMENT``):
    ``latency_ms.median`` with the median of ``distribution.quantiles_ms``, the
    sample counts, and the last history row (this run) with ``latency_ms`` and
    ``throughput``. All values are already checked finite and > 0."""
    _agree("latency_ms.median", lat["median"], "the median of distribution.quantiles_ms", median_of(quantiles))
    if n != lat["n"]:
        raise FieldError("distribution.n", f"is {n} but latency_ms.n is {lat['n']}: the figures of one run must "
                                           f"agree (was one of them edited?)")
    if rows:
        _last_row(lat, throughput, rows)
    spread(lat, quantiles)
    row_order(rows)


def _last_row(lat: Mapping[str, Any], throughput: float, rows: Sequence[Mapping[str, Any]]) -> None:
    last, f = rows[-1], f"history[{len(rows) - 1}]"
    if last["n"] != lat["n"]:
        raise FieldError(f"{f}.n", f"is {last['n']} but latency_ms.n is {lat['n']}: the last history row is "
                                   f"this entry's run (was one of them edited?)")
    for key in POSITIVE:
        _agree(f"{f}.{key}", last[key], f"latency_ms.{key}", lat[key])
    _agree(f"{f}.throughput", last["throughput"], "throughput", throughput)


def identity_disagreement(kind: str, mode: str, stored_hash: str, critical: Mapping[str, Any],
                          config: Mapping[str, Any] | None) -> str | None:
    """Where an entry's identity fields disagree with each other, or None.

    ``update`` writes them together from one configuration: the workload kind
    is also ``fingerprint.critical.kind`` and ``config.kind``, the mode is
    ``config.mode``, and ``config_hash`` is the hash of ``config``. A one-line
    edit of any of them made a 3x slowdown ``incomparable`` (a pass by
    default); the gate names such an entry as edited (``decided_by="suspect_baseline"``).
    Checked by the gate, not at read time: an entry of an older version whose
    stored configuration hashes differently still loads and is compared."""
    if "kind" in critical and critical["kind"] != kind:
        return f"kind {kind!r} but fingerprint.critical.kind {critical['kind']!r}"
    if config is None:
        return None
    if "kind" in config and config["kind"] != kind:
        return f"kind {kind!r} but config.kind {config['kind']!r}"
    if "mode" in config and config["mode"] != mode:
        return f"mode {mode!r} but config.mode {config['mode']!r}"
    if hash_of_config(config) != stored_hash:
        return f"config_hash {stored_hash} is not the hash of its config ({hash_of_config(config)})"
    return None
