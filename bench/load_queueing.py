"""The open-loop driver against queueing theory on the CPU, as a table for
bench/RESULTS.md (issue 23, point 6): the checks of
tests/test_load_queueing.py, with their numbers.

A host service sleeps (then spins the last 0.2 ms) for a drawn service time,
so one slot is M/M/1 (exponential, mean 2 ms) or M/D/1 (fixed 2 ms), two
slots M/M/2; Poisson arrivals at utilisation 0.3, 0.5, 0.8; 5 s per run, the
first 0.5 s not counted. Each row: the closed form at the nominal
parameters, the measured mean response (and the p99 for M/M/1 with 1 ms
services and 7 s runs) with its interval, the closed form at the service
times the host gave (their moments as the service measured them: low; as the
driver measured them plus its lag: high), and whether they agree; then the same
check on a closed-loop driver (same service, same number of requests, timed
back to back), which must NOT agree.

    PYTHONPATH=$PWD python bench/load_queueing.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
from pathlib import Path
from typing import Any


from tests import queueing as q  # noqa: E402  (tests/queueing.py: the closed forms and checks the tests use)

from pytest_trtperf.load.arrivals import schedule  # noqa: E402

S = 2e-3
EXP, FIXED = (S, 2 * S * S), (S, S * S)


def rows() -> list[dict[str, Any]]:
    out = []
    for rho in (0.3, 0.5, 0.8):
        lam = rho / S
        n = int(lam * 4.5)
        cases = [
            ("M/M/1 mean", lambda: q.open_loop(q.Service(q.exponential(S, 11)), 1, schedule("poisson", lam, 5.0, 11), 0.5),
             lambda: q.closed_loop(q.Service(q.exponential(S, 11)), 1, n),
             lambda o: q.check_mean(o, lambda a, b: q.mg1_mean(lam, a, b), EXP), q.mm1_mean(lam, 1 / S)),
            ("M/D/1 mean", lambda: q.open_loop(q.Service(q.fixed(S)), 1, schedule("poisson", lam, 5.0, 5), 0.5),
             lambda: q.closed_loop(q.Service(q.fixed(S)), 1, n),
             lambda o: q.check_mean(o, lambda a, b: q.mg1_mean(lam, a, b), FIXED), q.md1_mean(lam, S)),
            ("M/M/2 mean", lambda: q.open_loop(q.Service(q.exponential(S, 23)), 2,
                                               schedule("poisson", 2 * lam, 5.0, 23), 0.5),
             lambda: q.closed_loop(q.Service(q.exponential(S, 23)), 2, 2 * n),
             lambda o: q.check_mean(o, lambda a, b: q.mgc_mean(2 * lam, a, b, 2), EXP), q.mmc_mean(2 * lam, 1 / S, 2)),
        ]
        s1, lam1 = 1e-3, rho / 1e-3
        cases.append(("M/M/1 p99 (1 ms)",
                      lambda: q.open_loop(q.Service(q.exponential(s1, 11)), 1, schedule("poisson", lam1, 7.0, 11), 0.5),
                      lambda: q.closed_loop(q.Service(q.exponential(s1, 11)), 1, int(lam1 * 6.5)),
                      lambda o: q.check_quantile(o, 0.99, lambda pp: lambda a, b: -math.log1p(-pp) * q.mg1_mean(lam1, a, b),
                                                 (s1, 2 * s1 * s1)), q.mm1_quantile(lam1, 1 / s1, 0.99)))
        for name, open_run, closed_run, check, nominal in cases:
            c_open, c_closed = check(open_run()), check(closed_run())
            out.append({"model": name, "rho": rho, "nominal_ms": nominal * 1e3, "open": _row(c_open),
                        "judgeable": math.isfinite(c_open.t_low),
                        "closed": _row(c_closed)})
            print(f"{name:18s} rho {rho}: open {c_open} -> {'agrees' if c_open.ok else 'DISAGREES'}; "
                  f"closed loop {'agrees (!)' if c_closed.ok else 'disagrees'}", flush=True)
    return out


def _row(c: q.Check) -> dict[str, Any]:
    return {"measured_ms": c.measured * 1e3, "interval_ms": [c.m_low * 1e3, c.m_high * 1e3],
            "theory_ms": [c.t_low * 1e3, c.t_high * 1e3], "agrees": c.ok}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    load0 = os.getloadavg()
    table = rows()
    # What the tests assert: every open loop agrees; the closed loop's mean disagrees (M/M/2 from rho 0.5:
    # at 0.3 two servers rarely queue) and its p99 at rho 0.5.
    must_disagree = [r for r in table if (r["model"] != "M/M/1 p99 (1 ms)" and not (r["model"] == "M/M/2 mean"
                                                                                    and r["rho"] == 0.3))
                     or (r["model"] == "M/M/1 p99 (1 ms)" and r["rho"] == 0.5)]
    ok = all(r["open"]["agrees"] for r in table if r["judgeable"]) and not any(r["closed"]["agrees"]
                                                                            for r in must_disagree)
    doc = {"date": started, "host": platform.node(), "cpus": os.cpu_count(), "load_before": load0,
           "load_after": os.getloadavg(), "rows": table, "pass": ok}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(f"\n{started}; {platform.node()}, {os.cpu_count()} CPUs; load {load0[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after\n")
    print("| model | rho | closed form, nominal ms | open loop: measured (interval) ms | closed form at measured "
          "service ms | agrees | closed loop: measured ms | agrees |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        o, c = r["open"], r["closed"]
        print(f"| {r['model']} | {r['rho']} | {r['nominal_ms']:.3f} | {o['measured_ms']:.3f} ({o['interval_ms'][0]:.3f}..{o['interval_ms'][1]:.3f})"
              f" | {o['theory_ms'][0]:.3f}..{o['theory_ms'][1]:.3f} | {o['agrees'] if r['judgeable'] else 'not judgeable'} | {c['measured_ms']:.3f} "
              f"({c['interval_ms'][0]:.3f}..{c['interval_ms'][1]:.3f}) | {c['agrees']} |")
    print(f"\nPASS (every judgeable open loop agrees: not judgeable = the host's service times saturate the queue; "
          f"the closed loop disagrees where the tests say it must): {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
