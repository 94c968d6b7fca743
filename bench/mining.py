"""Association-rule mining: `mine` next to mlxtend's fpgrowth, measured in the same run.

Run: ``.venv/bin/python bench/mining.py [--runs 3] [--repeat 4]``. The 28,816 real baskets of
``tests/fixtures/data/online-retail-baskets.txt.gz`` (a copy of ``shared/data/``) are repeated
``--repeat`` times (~115k baskets), then mined at min support 0.01 and 0.005 (no maximum
length, min confidence 0.0). The product is ``plugins.smart_sales.mining.mine``; the
reference is mlxtend's ``TransactionEncoder`` +
``fpgrowth(use_colnames=True)`` + ``association_rules(metric="confidence", min_threshold=0)``,
both timed from the list of baskets to the list of rules. ``max_basket_size`` is set above the
largest basket so both see the same data. The rules must be identical (same antecedent and
consequent sets, metrics within 1e-9). Target: the product at least 3x faster.
"""

from __future__ import annotations

import argparse
import gzip
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.smart_sales.mining import Rule, mine

BASKETS_FILE = (
    Path(__file__).resolve().parents[1] / "tests/fixtures/data/online-retail-baskets.txt.gz"
)
SUPPORTS = (0.01, 0.005)
TARGET_RATIO = 3.0
NO_CAP = 10_000
METRICS = ("support", "confidence", "lift", "leverage", "conviction")


def product(baskets: list[list[str]], min_support: float) -> dict:
    """Rules of ``mine`` keyed by (antecedent, consequent) sets."""
    rules: list[Rule] = mine(baskets, min_support=min_support, max_basket_size=NO_CAP)
    return {
        (frozenset(r.antecedent), frozenset(r.consequent)): tuple(getattr(r, m) for m in METRICS)
        for r in rules
    }


def reference(baskets: list[list[str]], min_support: float) -> dict:
    """Rules of mlxtend's TransactionEncoder + fpgrowth + association_rules, same keys."""
    encoder = TransactionEncoder()
    frame = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True)
    rules = association_rules(
        itemsets, num_itemsets=len(frame), metric="confidence", min_threshold=0.0
    )
    return {
        (frozenset(row.antecedents), frozenset(row.consequents)): tuple(
            float(getattr(row, m)) for m in METRICS
        )
        for row in rules.itertuples()
    }


def timed(function: Callable[[], dict], runs: int) -> tuple[float, dict]:
    """Median wall time of ``function`` over ``runs`` runs, and its last result."""
    times = []
    result: dict = {}
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def identical(ours: dict, theirs: dict) -> bool:
    """Same rules, every metric within 1e-9 (or both infinite)."""
    if set(ours) != set(theirs):
        return False
    for key, values in theirs.items():
        for a, b in zip(ours[key], values, strict=True):
            if math.isinf(a) or math.isinf(b):
                if a != b:
                    return False
            elif not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
                return False
    return True


def main() -> None:
    """Print, per min support, both medians, their ratio and whether the rules are identical."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    with gzip.open(BASKETS_FILE, "rt", encoding="utf-8") as handle:
        baskets = [line.strip().split(",") for line in handle if line.strip()] * args.repeat
    items = len({sku for basket in baskets for sku in basket})
    print(f"baskets: {len(baskets):,} ({args.repeat}x the file), items: {items:,}")
    print(f"min confidence 0.0, no max length; medians of {args.runs} runs")
    for min_support in SUPPORTS:
        ours_s, ours = timed(lambda s=min_support: product(baskets, s), args.runs)
        ref_s, theirs = timed(lambda s=min_support: reference(baskets, s), args.runs)
        same = identical(ours, theirs)
        ratio = ref_s / ours_s
        verdict = "met" if same and ratio >= TARGET_RATIO else "MISSED"
        print(f"min support {min_support}: {len(ours):,} rules")
        print(f"  product   mine:                        {ours_s:7.2f} s")
        print(f"  reference mlxtend fpgrowth + rules:    {ref_s:7.2f} s")
        print(f"  ratio reference/product:               {ratio:7.2f}x")
        print(f"  rules identical:                       {'yes' if same else 'NO':>7}")
        print(f"  target >= {TARGET_RATIO:.0f}x and identical:         {verdict:>7}")


if __name__ == "__main__":
    main()
