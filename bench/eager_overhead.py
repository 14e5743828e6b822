"""Why does a launch-bound eager torch model read slower through the plugin
than in the guide's Listing 9 loop? (issue 10 audit: ResNet-50 FP16 batch 1
with graphs off read 5.71 ms against Listing 9's 4.85 ms on the H200.)

Times the same eager callable, interleaved over several rounds, as:

* ``l9``: Listing 9 (event pair around each call, synchronize after it), default stream;
* ``l9_side``: the same loop with a side stream current (as the plugin runs torch callables);
* ``l9_sampler``: the same loop while the plugin's NVML sampler thread runs (10 ms interval);
* ``ours``: ``TorchWorkload(cuda_graph=False)`` through ``measure()`` without a sampler;
* ``ours_sampler``: the same with the sampler, as the plugin runs it.

Run on a GPU machine from the repository root (reads NVML only, changes nothing):

    PYTHONPATH=$PWD python bench/eager_overhead.py [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any


from pytest_trtperf.core.measure import MeasureSettings, measure  # noqa: E402
from pytest_trtperf.workloads.torch import TorchWorkload  # noqa: E402
from reference_models import listing9  # noqa: E402  (the guide's loop, as the reference-model bench runs it)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    import torch
    import torchvision

    from pytest_trtperf.gpu.device_state import make_monitor

    with torch.device("cuda"):
        model = torchvision.models.resnet50(weights=None)
    model = model.half().eval().requires_grad_(False)
    x = torch.randn(args.batch, 3, 224, 224, device="cuda", dtype=torch.float16)

    def fn() -> Any:
        return model(x)

    side = torch.cuda.Stream()
    settings = MeasureSettings()

    def l9() -> float:
        return listing9(torch, fn, 10, 200)

    def l9_side() -> float:
        with torch.cuda.stream(side):
            return listing9(torch, fn, 10, 200)

    def l9_sampler() -> float:
        mon = make_monitor(0, 0.01)
        assert mon is not None
        mon.start()
        try:
            return listing9(torch, fn, 10, 200)
        finally:
            mon.stop()

    def ours(with_sampler: bool) -> float:
        w = TorchWorkload(fn, cuda_graph=False, inferences_per_iteration=args.batch)
        w.setup()
        try:
            m = measure(w, settings, make_monitor(0, 0.01) if with_sampler else None)
        finally:
            w.teardown()
        return float(statistics.median(m.latency_s)) * 1e3

    cases: dict[str, Callable[[], float]] = {
        "l9": l9, "l9_side": l9_side, "l9_sampler": l9_sampler,
        "ours": lambda: ours(False), "ours_sampler": lambda: ours(True)}
    rows: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            rows[name].append(cases[name]())
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f} ms" for k, v in rows.items()), flush=True)
    out = dict(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               gpu=torch.cuda.get_device_name(), torch=torch.__version__, batch=args.batch,
               medians_ms={k: statistics.median(v) for k, v in rows.items()}, rounds=rows)
    print(json.dumps(out["medians_ms"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
