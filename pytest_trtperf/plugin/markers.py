"""Marker and keyword arguments of a test: ``trt_perf`` markers, the
``benchmark`` marker of pytest-benchmark's vocabulary, ``trt_bench.pedantic``,
``trt_serve`` markers and ``trt_bench.serve()`` keywords, ``trt_bench.compare``
expectations, measurement names and ``extra_info``, each checked once with
one line naming the test on bad input.

Importing this module is cheap (no numpy): pytest loads it with the plugin.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from pytest_trtperf.core.config import (TEXT_FIX, MeasureOptions, MeasureSettings, parse_bool, parse_choice,
                                        parse_fraction, parse_number, parse_seconds, strict_bool, text_problem)
from pytest_trtperf.core.errors import UsageError


def measurement_name(value: Any, *, where: str) -> str | None:
    """``name=`` of a measurement: a non-empty string or None. Anything else
    (an object, a number) would put a memory address or a changing repr into
    the result id, so every run would look like a new measurement."""
    if value is None or (isinstance(value, str) and value.strip()):
        why = text_problem(value) if value is not None else None
        if why is not None:
            raise UsageError(f"{where}: name={value!r} {why}; {TEXT_FIX}")
        return value
    raise UsageError(f"{where}: name={value!r} must be a non-empty string such as name=\"bs16\"")


#: Largest ``extra_info`` (as JSON) a result may carry: it is copied into
#: every baseline entry, --trt-json document and report.
MAX_EXTRA_INFO_BYTES = 64 * 1024


def extra_info(value: Any, *, where: str, what: str = "extra_info") -> dict[str, Any]:
    """``extra_info``: a mapping with string keys of JSON data (strings,
    finite numbers, booleans, None, lists and mappings of them), at most
    ``MAX_EXTRA_INFO_BYTES`` as JSON. Returned as it reads back from JSON
    (tuples become lists), so what a test sets is what a baseline keeps."""
    import json

    fix = "extra_info holds JSON data: strings, numbers, booleans, None, lists and dicts with string keys"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: {what}={type(value).__name__} is not a dict; {fix}")
    bad_key = next((k for k in value if not isinstance(k, str)), None)
    if bad_key is not None:
        raise UsageError(f"{where}: {what} key {bad_key!r} is not a string; {fix}")
    bad = _bad_text(value, what)
    if bad is not None:
        raise UsageError(f"{where}: {bad}; {TEXT_FIX}")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise UsageError(f"{where}: {what} is not JSON data ({str(e).splitlines()[0][:120]}); {fix}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_EXTRA_INFO_BYTES:
        raise UsageError(f"{where}: {what} is {size} bytes as JSON, more than {MAX_EXTRA_INFO_BYTES}; keep it to "
                         f"context (versions, sizes, settings), not data")
    return dict(json.loads(text))


def _bad_text(value: Any, field: str, depth: int = 0) -> str | None:
    """The first key or string of ``extra_info`` data that ``text_problem``
    refuses."""
    if depth > 32:
        return None  # json.dumps refuses what is deeper than it can write
    if isinstance(value, str):
        why = text_problem(value)
        return f"{field}={value[:60]!r} {why}" if why else None
    items: Any = value.items() if isinstance(value, Mapping) else (
        enumerate(value) if isinstance(value, (list, tuple)) else ())
    for k, v in items:
        why = text_problem(k) if isinstance(k, str) else None
        if why:
            return f"{field} key {k[:60]!r} {why}"
        found = _bad_text(v, f"{field}[{k!r}]", depth + 1)
        if found:
            return found
    return None


def inferences_per_iteration(value: Any, *, where: str) -> int:
    """``inferences_per_iteration=``: a positive whole number (a batch size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where}: inferences_per_iteration={value!r} must be a positive whole number")
    return int(parse_number(value, what=f"{where}: inferences_per_iteration", low=1, high=2**31, integer=True))


#: ``min_speedup=`` above this is a typo, not an expectation.
MAX_SPEEDUP = 1e6


def expectation(max_slowdown: Any, min_speedup: Any, *, where: str) -> tuple[str, float]:
    """The expectation of ``trt_bench.compare(a, b, ...)``: ``("max_slowdown",
    0.03)`` for ``max_slowdown="3%"`` (b at most 3% slower than a) or
    ``("min_speedup", 1.5)`` for ``min_speedup=1.5`` (b at least 1.5x faster).
    Exactly one of them: both bound the same ratio b/a from above."""
    if max_slowdown is None and min_speedup is None:
        raise UsageError(f"{where}: say what to expect of b against a: max_slowdown=\"3%\" (b at most 3% slower) "
                         f"or min_speedup=1.5 (b at least 1.5x faster)")
    if max_slowdown is not None and min_speedup is not None:
        raise UsageError(f"{where}: max_slowdown= and min_speedup= both given; they bound the same ratio b/a "
                         f"(max_slowdown=\"3%\": b/a <= 1.03; min_speedup=1.5: b/a <= 1/1.5): keep one")
    if max_slowdown is not None:
        return "max_slowdown", parse_fraction(max_slowdown, what=f"{where}: max_slowdown", bare_max=1.0)
    text = min_speedup.strip().lower().removesuffix("x") if isinstance(min_speedup, str) else min_speedup
    if isinstance(min_speedup, str) and min_speedup.strip().endswith("%"):
        raise UsageError(f"{where}: min_speedup={min_speedup!r} is a factor, not a percentage: write 1.5 for "
                         f"\"b at least 1.5x faster\" (or max_slowdown= for a percentage)")
    return "min_speedup", float(parse_number(text, what=f"{where}: min_speedup", low=0, high=MAX_SPEEDUP,
                                             low_open=True))


def perf_overrides(markers: list[Any], *, where: str) -> dict[str, Any]:
    """Merge ``trt_perf`` marker kwargs (the closest marker, first, wins) and
    validate them: names, values and cross-field rules, with one-line errors
    naming ``where``."""
    merged: dict[str, Any] = {}
    for mark in reversed(markers):
        if mark.args:
            raise UsageError(f"{where}: @pytest.mark.{mark.name} takes keyword arguments only, "
                             f"got {mark.args!r}")
        merged.update(mark.kwargs)
    MeasureOptions().with_overrides(merged, where=where)
    return merged


# -- pytest-benchmark's vocabulary (--trt-benchmark-compat, trt_bench.pedantic) -----------
#: ``@pytest.mark.benchmark`` arguments pytest-trtperf takes, as ``trt_perf`` arguments.
BENCHMARK_MAPPED = {"group": "group", "min_rounds": "min_iterations", "max_time": "max_time"}
#: Arguments that set how pytest-benchmark calibrates loops per round: every call is
#: timed here, so they have nothing to set; accepted and named in the result's notes.
BENCHMARK_NOTHING_TO_SET = ("min_time", "calibration_precision", "warmup_iterations")
#: Clocks ``timer=`` may name: the host clock (perf_counter_ns) is at least as fine.
BENCHMARK_TIMERS = ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns",
                    "process_time", "process_time_ns")


@dataclass(frozen=True)
class BenchmarkMarker:
    """A ``@pytest.mark.benchmark(...)`` read once: ``trt_perf`` overrides,
    whether the measurement runs with the garbage collector off, and notes on
    what had nothing to set."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    disable_gc: bool = False
    notes: tuple[str, ...] = ()


def _benchmark_timer(value: Any, where: str) -> str | None:
    """A note for a host clock from ``time``, else a usage error."""
    name = getattr(value, "__name__", None)
    if getattr(value, "__module__", None) == "time" and name in BENCHMARK_TIMERS:
        return None if name in ("perf_counter", "perf_counter_ns") else \
            f"benchmark(timer=time.{name}): timed with time.perf_counter_ns, the finer host clock"
    raise UsageError(f"{where}: @pytest.mark.benchmark(timer={value!r}): only the host clocks of the time module "
                     f"are taken; for GPU work use trt_bench.measure(fn, timer='cuda' or 'torch')")


def benchmark_marker(markers: list[Any], *, where: str) -> BenchmarkMarker:
    """``@pytest.mark.benchmark`` arguments mapped to ``trt_perf`` ones, or
    refused with one line each: ``group``, ``min_rounds`` (min_iterations),
    ``max_time``, ``warmup`` (False: no timed warm-up, still a few calls),
    ``disable_gc``, ``timer`` (a host clock of ``time``), and the per-round
    calibration (``min_time``, ``calibration_precision``,
    ``warmup_iterations``), which has nothing to set here. The closest
    marker wins, as in pytest-benchmark."""
    mark = markers[0] if markers else None
    if mark is None:
        return BenchmarkMarker()
    if mark.args:
        raise UsageError(f"{where}: @pytest.mark.benchmark takes keyword arguments only, got {mark.args!r}")
    overrides: dict[str, Any] = {}
    notes: list[str] = []
    disable_gc = False
    for key, value in mark.kwargs.items():
        what = f"{where}: @pytest.mark.benchmark({key}=)"
        if key in BENCHMARK_MAPPED:
            overrides[BENCHMARK_MAPPED[key]] = value
            if key == "max_time":  # a cap below our minimum time lowers the minimum with it
                overrides["min_time"] = min(parse_seconds(value, what), MeasureSettings().min_time_s)
        elif key == "warmup":
            if not strict_bool(value, what):
                overrides["warmup_ms"] = 0
        elif key == "disable_gc":
            disable_gc = strict_bool(value, what)
        elif key == "timer":
            note = _benchmark_timer(value, where)
            notes += [note] if note else []
        elif key in BENCHMARK_NOTHING_TO_SET:
            notes.append(f"benchmark({key}=) ignored: pytest-benchmark calibrates loops per round with it; "
                         f"pytest-trtperf times every call")
        elif key in ("precision", "confidence"):
            raise UsageError(f"{what}: pytest-benchmark's stopping rule on the mean; pytest-trtperf stops on the "
                             f"median's interval: use @pytest.mark.trt_perf(target_ci=...) (and confidence= for "
                             f"the gate's level)")
        elif key == "cprofile":
            raise UsageError(f"{what}: not supported; profile with --trt-nvtx or cProfile around the call")
        else:
            raise UsageError(f"{where}: @pytest.mark.benchmark can't have {key!r} keyword argument (known: "
                             f"{', '.join(sorted([*BENCHMARK_MAPPED, 'warmup', 'disable_gc', 'timer', *BENCHMARK_NOTHING_TO_SET]))})")
    MeasureOptions().with_overrides(overrides, where=f"{where}: @pytest.mark.benchmark")
    return BenchmarkMarker(overrides=overrides, disable_gc=disable_gc, notes=tuple(notes))


def _positive_int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{what}: {value!r} must be an int >= {low}")
    return value


def pedantic_options(opts: MeasureOptions, *, rounds: Any, warmup_rounds: Any, iterations: Any, has_setup: bool,
                     where: str) -> tuple[MeasureOptions, int]:
    """``trt_bench.pedantic``'s numbers, checked as pytest-benchmark checks
    them: ``rounds`` timed rounds (the fixed iteration count), exactly
    ``warmup_rounds`` untimed rounds first, ``iterations`` calls per round
    (1 with a ``setup``). Returns the options and ``iterations``."""
    rounds = _positive_int(rounds, f"{where}: rounds", 1)
    warmup_rounds = _positive_int(warmup_rounds, f"{where}: warmup_rounds", 0)
    iterations = _positive_int(iterations, f"{where}: iterations", 1)
    if iterations > 1 and has_setup:
        raise UsageError(f"{where}: iterations={iterations} with a setup: setup runs once per round, so a round "
                         f"can hold one call only (as in pytest-benchmark)")
    out = dataclasses.replace(opts, iterations=rounds, duration_s=None, warmup_s=0.0,
                              min_warmup_iterations=warmup_rounds, min_iterations=min(opts.min_iterations, rounds))
    return out, iterations


# -- latency under load: trt_bench.serve() and the trt_serve marker ---------------
#: ``trt_bench.serve()`` / ``@pytest.mark.trt_serve`` keywords (the serve
#: configuration; measuring and gating options stay with ``trt_perf``).
SERVE_ARGS = ("rate", "concurrency", "arrivals", "duration", "warmup", "slo", "seed", "search", "search_time",
              "precision")
#: Largest number of execution slots (threads, streams or TensorRT contexts).
MAX_CONCURRENCY = 256
#: Default seconds measured at each rate, and the share of it run first as warm-up.
SERVE_DURATION_S = 5.0
SERVE_WARMUP_SHARE = 0.2


def serve_plan(args: Mapping[str, Any], *, where: str) -> Any:
    """A checked ``load.serve.ServePlan`` from serve keywords (marker defaults
    merged under the call's). One line naming ``where`` on bad input."""
    from pytest_trtperf.load.arrivals import ARRIVALS, check_trace
    from pytest_trtperf.load.serve import ServePlan
    from pytest_trtperf.core.serve_summary import Slo

    unknown = sorted(set(args) - set(SERVE_ARGS))
    if unknown:
        raise UsageError(f"{where}: unknown serve argument(s) {', '.join(unknown)}; known: {', '.join(SERVE_ARGS)}")
    if args.get("rate") is None:
        raise UsageError(f"{where}: serve needs rate= (requests per second offered), e.g. rate=200")
    rate = float(parse_number(args["rate"], what=f"{where}: rate", low=0, high=1e6, low_open=True))
    concurrency = int(parse_number(args.get("concurrency", 1), what=f"{where}: concurrency", low=1,
                                   high=MAX_CONCURRENCY, integer=True))
    arrivals: Any = args.get("arrivals", "poisson")
    if isinstance(arrivals, str):
        arrivals = parse_choice(arrivals, ARRIVALS, what=f"{where}: arrivals")
    else:
        arrivals = check_trace(arrivals, where)
    duration = float(parse_number(args.get("duration", SERVE_DURATION_S), what=f"{where}: duration", low=0,
                                  high=3600, low_open=True))
    warmup = float(parse_number(args.get("warmup", SERVE_WARMUP_SHARE * duration), what=f"{where}: warmup",
                                low=0, high=3600))
    slo = None
    if args.get("slo") is not None:
        try:
            slo = Slo.parse(args["slo"])
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
    search = parse_bool(args.get("search", slo is not None), what=f"{where}: search")
    if search and slo is None:
        raise UsageError(f"{where}: search=True needs slo= (the rate search looks for the highest rate meeting it)")
    seed = int(parse_number(args.get("seed", 0), what=f"{where}: seed", low=0, high=2**63 - 1, integer=True))
    return ServePlan(rate=rate, arrivals=arrivals, concurrency=concurrency, duration_s=duration, warmup_s=warmup,
                     seed=seed, slo=slo, search=search,
                     search_time_s=float(parse_number(args.get("search_time", 10 * (duration + warmup)),
                                                      what=f"{where}: search_time", low=0, high=86400,
                                                      low_open=True)),
                     precision=float(parse_number(args.get("precision", 0.05), what=f"{where}: precision",
                                                  low=0, high=1, low_open=True)),
                     drain_s=max(1.0, duration))


def serve_overrides(markers: list[Any], *, where: str) -> dict[str, Any]:
    """Merged ``trt_serve`` marker keywords (closest marker wins), checked."""
    merged: dict[str, Any] = {}
    for mark in reversed(markers):
        if mark.args:
            raise UsageError(f"{where}: @pytest.mark.{mark.name} takes keyword arguments only, got {mark.args!r}")
        merged.update(mark.kwargs)
    unknown = sorted(set(merged) - set(SERVE_ARGS))
    if unknown:
        raise UsageError(f"{where}: @pytest.mark.trt_serve: unknown argument(s) {', '.join(unknown)}; known: "
                         f"{', '.join(SERVE_ARGS)}")
    return merged
