"""Customer lifetime value: fitting BG/NBD and Gamma-Gamma and predicting, on 100,000 customers.

Run: ``.venv/bin/python bench/clv.py [--customers 100000] [--runs 3] [--horizon 52]``.

- data: a calibration summary simulated (vectorised, fixed seed) from the CDNOW estimates in
  weeks (BG/NBD r=0.24, alpha=4.41, a=0.79, b=2.43; Gamma-Gamma p=6.25, q=3.74, v=15.44),
  customers observed 1 to 104 weeks after their first purchase; times are rounded to whole
  days, as the summary read from orders has them.
- product: ``fit_bgnbd`` + ``fit_gamma_gamma`` + predictions for every customer
  (``expected_purchases`` over the horizon, ``probability_alive``, ``expected_spend`` and a
  ``clv`` discounted at 0.2% a week, which evaluates the expectation at every week of the
  horizon), what ``crm analytics clv predict`` computes after reading the summary.
- reference: the target itself, 10 s for fit and prediction together (there is no other
  implementation in the project to race against).

Reading the summary from the database is not included (see bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugins.analytical import clv

BG = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}
TARGET_SECONDS = 10.0


def simulate(customers: int, seed: int) -> dict[str, np.ndarray]:
    """A weekly calibration summary of ``customers`` customers, times on whole days."""
    rng = np.random.default_rng(seed)
    T = rng.integers(7, 729, customers) / 7  # 1 to 104 weeks, whole days
    frequency, recency = clv.simulate_bgnbd(BG, T, rng)
    recency = np.minimum(np.floor(recency * 7) / 7, T - 1 / 7)
    monetary = clv.simulate_gamma_gamma(GG, frequency, rng)
    return {"frequency": frequency, "recency": recency, "T": T, "monetary": monetary}


def run_once(data: dict[str, np.ndarray], horizon: int) -> tuple[dict[str, float], dict]:
    """Fit both models and predict; return the seconds of each step and the fits."""
    seconds: dict[str, float] = {}
    x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary"]
    start = time.perf_counter()
    bg = clv.fit_bgnbd(x, t_x, T)
    seconds["fit_bgnbd"] = time.perf_counter() - start
    mark = time.perf_counter()
    gg = clv.fit_gamma_gamma(x, m)
    seconds["fit_gamma_gamma"] = time.perf_counter() - mark
    mark = time.perf_counter()
    clv.expected_purchases(bg.params, horizon, x, t_x, T)
    clv.probability_alive(bg.params, x, t_x, T)
    clv.expected_spend(gg.params, x, m)
    clv.clv(bg.params, gg.params, x, t_x, T, m, horizon, discount_rate=0.002)
    seconds["predict"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    return seconds, {"bgnbd": bg, "gamma_gamma": gg}


def main() -> None:
    """Parse options, run, print the medians against the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=52, help="weeks")
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args()

    data = simulate(args.customers, args.seed)
    repeaters = int(np.count_nonzero(data["frequency"]))
    runs = [run_once(data, args.horizon) for _ in range(args.runs)]
    medians = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
    fits = runs[0][1]
    print(
        f"customers: {args.customers:,} ({repeaters:,} with repeat purchases); "
        f"horizon {args.horizon} weeks; runs: {args.runs} (medians)"
    )
    for name, fit in fits.items():
        params = ", ".join(f"{k}={v:.3f}" for k, v in fit.params.items())
        print(f"  {name:<12} {params}  (log-likelihood {fit.log_likelihood:,.1f})")
    print(f"fit_bgnbd:                  {medians['fit_bgnbd']:6.2f} s")
    print(f"fit_gamma_gamma:            {medians['fit_gamma_gamma']:6.2f} s")
    print(f"predictions (+ weekly CLV): {medians['predict']:6.2f} s")
    total = medians["total"]
    verdict = "met" if total < TARGET_SECONDS else "NOT met"
    print(f"fit + prediction:           {total:6.2f} s")
    print(f"reference (the target):     {TARGET_SECONDS:6.2f} s")
    print(f"ratio product/target:       {total / TARGET_SECONDS:6.2f}   target < 10 s: {verdict}")


if __name__ == "__main__":
    main()
