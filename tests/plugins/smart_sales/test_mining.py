"""Association-rule mining: equal to mlxtend rule for rule on real baskets, and edge cases."""

from __future__ import annotations

import gzip
import math

import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

from plugins.smart_sales.mining import MiningError, Rule, mine, mine_counted
from tests.conftest import FIXTURES

BASKETS_FILE = FIXTURES / "data" / "online-retail-baskets.txt.gz"
METRICS = ("support", "confidence", "lift", "leverage", "conviction")
NO_CAP = 10_000  # above the largest basket of the file (674 SKUs)


def read_baskets() -> list[list[str]]:
    """One basket per line, comma-separated SKUs."""
    with gzip.open(BASKETS_FILE, "rt", encoding="utf-8") as handle:
        return [line.strip().split(",") for line in handle if line.strip()]


@pytest.fixture(scope="module")
def baskets() -> list[list[str]]:
    """The 28,816 real baskets."""
    return read_baskets()


def one_hot(baskets: list[list[str]]) -> pd.DataFrame:
    """mlxtend's one-hot encoding of the baskets."""
    encoder = TransactionEncoder()
    return pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)


@pytest.fixture(scope="module")
def encoded(baskets: list[list[str]]) -> pd.DataFrame:
    """The real baskets, one-hot encoded once for every reference run."""
    return one_hot(baskets)


def reference(frame: pd.DataFrame, min_support: float, max_length: int | None = None) -> dict:
    """mlxtend fpgrowth + association_rules as {(antecedent, consequent): metrics}."""
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_length)
    rules = association_rules(
        itemsets, num_itemsets=len(frame), metric="confidence", min_threshold=0.0
    )
    return {
        (frozenset(row.antecedents), frozenset(row.consequents)): {
            m: float(getattr(row, m)) for m in METRICS
        }
        for row in rules.itertuples()
    }


def assert_same_rules(ours: list[Rule], theirs: dict) -> None:
    """Same set of rules, each metric within 1e-9 (conviction inf on both sides or close)."""
    keyed = {(frozenset(r.antecedent), frozenset(r.consequent)): r for r in ours}
    assert len(keyed) == len(ours), "duplicate rules"
    assert set(keyed) == set(theirs)
    for key, expected in theirs.items():
        rule = keyed[key]
        for metric, value in expected.items():
            got = getattr(rule, metric)
            if math.isinf(value):
                assert math.isinf(got), (key, metric)
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (key, metric, got, value)


@pytest.mark.parametrize(("min_support", "max_length"), [(0.02, None), (0.01, None), (0.01, 3)])
def test_equals_mlxtend_on_real_baskets(baskets, encoded, min_support, max_length):
    ours = mine(baskets, min_support=min_support, max_length=max_length, max_basket_size=NO_CAP)
    theirs = reference(encoded, min_support, max_length)
    assert len(theirs) > 10  # the comparison means something
    assert_same_rules(ours, theirs)


def test_equals_mlxtend_on_capped_real_baskets(baskets):
    # The default cap leaves out baskets of more than 50 distinct SKUs: mlxtend on the other
    # baskets gives the same rules, and the cap changes the result on this file.
    capped = [b for b in baskets if len(set(b)) <= 50]
    ours = mine(baskets, min_support=0.01)
    assert_same_rules(ours, reference(one_hot(capped), 0.01))
    uncapped = mine(baskets, min_support=0.01, max_basket_size=NO_CAP)
    assert {(r.antecedent, r.consequent) for r in ours} != {
        (r.antecedent, r.consequent) for r in uncapped
    }


def test_min_confidence_and_min_lift_filter_like_mlxtend(baskets, encoded):
    theirs = reference(encoded, 0.01, 3)
    ours = mine(
        baskets, min_support=0.01, min_confidence=0.5, min_lift=10.0, max_basket_size=NO_CAP
    )
    expected = {k: v for k, v in theirs.items() if v["confidence"] >= 0.5 and v["lift"] >= 10.0}
    assert 0 < len(expected) < len(theirs)
    assert_same_rules(ours, expected)


def test_sorted_by_confidence_then_lift(baskets):
    rules = mine(baskets, min_support=0.01, max_basket_size=NO_CAP)
    keys = [(-r.confidence, -r.lift, r.antecedent, r.consequent) for r in rules]
    assert keys == sorted(keys)
    assert all(list(r.antecedent) == sorted(r.antecedent) for r in rules)
    assert mine(baskets, min_support=0.01, max_basket_size=NO_CAP) == rules  # deterministic


SMALL = [["a", "b", "c"], ["a", "b"], ["a", "c"], ["b", "c", "d"], ["a", "b", "d"]]


def by_key(rules: list[Rule]) -> dict[tuple[tuple[str, ...], tuple[str, ...]], Rule]:
    return {(r.antecedent, r.consequent): r for r in rules}


def test_small_case_by_hand():
    rules = by_key(mine(SMALL, min_support=0.4))
    # Frequent (count >= 2): a4 b4 c3 d2, ab3 ac2 bc2 bd2; abc is in 1 basket only.
    assert set(rules) == {
        (("a",), ("b",)),
        (("b",), ("a",)),
        (("a",), ("c",)),
        (("c",), ("a",)),
        (("b",), ("c",)),
        (("c",), ("b",)),
        (("b",), ("d",)),
        (("d",), ("b",)),
    }
    ab = rules[(("a",), ("b",))]
    assert ab.support == pytest.approx(0.6)
    assert ab.confidence == pytest.approx(0.75)
    assert ab.lift == pytest.approx(0.75 / 0.8)
    assert ab.leverage == pytest.approx(0.6 - 0.8 * 0.8)
    assert ab.conviction == pytest.approx((1 - 0.8) / (1 - 0.75))
    db = rules[(("d",), ("b",))]
    assert db.confidence == 1.0
    assert math.isinf(db.conviction)


def test_three_item_rules_and_every_split():
    baskets = [["x", "y", "z"]] * 3 + [["x", "y"], ["z"]]
    rules = by_key(mine(baskets, min_support=0.5))
    three = {k for k in rules if len(k[0]) + len(k[1]) == 3}
    assert three == {
        (("x",), ("y", "z")),
        (("y",), ("x", "z")),
        (("z",), ("x", "y")),
        (("x", "y"), ("z",)),
        (("x", "z"), ("y",)),
        (("y", "z"), ("x",)),
    }
    assert rules[(("x", "z"), ("y",))].confidence == 1.0
    assert rules[(("x", "y"), ("z",))].confidence == pytest.approx(0.75)


def test_duplicates_in_a_basket_count_once():
    with_duplicates = [["a", "a", "b"], ["a", "b", "b", "b"], ["c", "c"], ["a"]]
    plain = [["a", "b"], ["a", "b"], ["c"], ["a"]]
    assert mine(with_duplicates, min_support=0.5) == mine(plain, min_support=0.5)
    ab = by_key(mine(with_duplicates, min_support=0.5))[(("a",), ("b",))]
    assert ab.support == 0.5
    assert ab.confidence == pytest.approx(2 / 3)


def test_max_length():
    baskets = [["x", "y", "z"]] * 4
    lengths = {len(r.antecedent) + len(r.consequent) for r in mine(baskets, min_support=0.5)}
    assert lengths == {2, 3}
    two = mine(baskets, min_support=0.5, max_length=2)
    assert {len(r.antecedent) + len(r.consequent) for r in two} == {2}
    assert len(two) == 6
    assert mine(baskets, min_support=0.5, max_length=1) == []


def test_min_confidence_and_min_lift():
    rules = mine(SMALL, min_support=0.4, min_confidence=0.7)
    assert {(r.antecedent, r.consequent) for r in rules} == {
        (("a",), ("b",)),
        (("b",), ("a",)),
        (("d",), ("b",)),
    }
    lifted = mine(SMALL, min_support=0.4, min_lift=1.0)
    assert {(r.antecedent, r.consequent) for r in lifted} == {(("b",), ("d",)), (("d",), ("b",))}
    assert all(r.lift >= 1.0 for r in lifted)


def test_baskets_over_the_cap_are_left_out_and_counted():
    baskets = [["a", "a", "b", "c"], ["a", "b"], ["a", "b"]]
    # Capped at 2 distinct SKUs: the first basket is left out, duplicates do not count.
    mined = mine_counted(baskets, min_support=1.0, max_basket_size=2)
    assert mined.left_out == 1
    assert {(r.antecedent, r.consequent) for r in mined.rules} == {
        (("a",), ("b",)),
        (("b",), ("a",)),
    }
    assert mined.itemsets == 3  # {a}, {b}, {a, b}
    assert mine_counted(baskets, min_support=1.0, max_basket_size=3).left_out == 0


@pytest.mark.parametrize("min_support", [0.0, -0.1, 1.5, float("nan")])
def test_refuses_support_outside_range(min_support):
    with pytest.raises(MiningError, match="min_support must be in"):
        mine(SMALL, min_support=min_support)


def test_refuses_support_under_two_baskets():
    baskets = [["a", "b"]] * 100
    with pytest.raises(MiningError, match=r"raise min_support to at least 0\.02"):
        mine(baskets, min_support=0.01)
    assert len(mine(baskets, min_support=0.02)) == 2


def test_refuses_itemset_explosion(monkeypatch):
    from plugins.smart_sales import mining

    monkeypatch.setattr(mining, "MAX_ITEMSETS", 50)
    baskets = [[f"s{i}" for i in range(10)]] * 4  # 1,023 frequent itemsets
    with pytest.raises(MiningError, match="raise min_support"):
        mine(baskets, min_support=0.5)
    assert issubclass(MiningError, ValueError)


def test_empty_input():
    assert mine([], min_support=0.1) == []
    assert mine([[], []], min_support=1.0) == []
    assert mine([["a"], ["b"]], min_support=1.0) == []
