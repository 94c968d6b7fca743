"""Exact association-rule mining over order baskets (pure module, no database code).

Algorithm
---------
Frequent itemsets are found with **Eclat** over a *vertical* layout: every frequent item gets
a bitset with one bit per basket (``numpy`` ``uint64`` words), set when the basket holds the
item. The support count of an itemset is the population count of the AND of its items'
bitsets (``np.bitwise_count``), so all counts are exact integers and support is
``count / number_of_baskets``.

1. Baskets are de-duplicated (an SKU counts once per basket). A basket with more than
   ``max_basket_size`` distinct SKUs is left out altogether (and counted): very large baskets
   (bulk or wholesale orders) say little about what goes together and cost the most. Support
   is measured over the baskets kept.
2. Items are counted; only items whose count reaches the minimum count are ever given a
   bitset. They are re-indexed by increasing support (ties by SKU), which keeps the
   depth-first branches small.
3. Depth first, each node holds the bitsets of its prefix extended by each remaining item (the
   "prefix tidsets"). For the i-th extension, the bitsets of all later extensions are ANDed with
   it in one vectorised operation, counted in one ``bitwise_count(...).sum(axis=1)``, and only
   the frequent ones are kept as the children node. ``max_length`` stops the descent.
4. Rules ``X -> Y`` are produced from every frequent itemset of two or more items, for every
   non-empty proper subset ``X`` (``Y`` is the rest); every subset of a frequent itemset is
   frequent, so its count is known. Metrics follow mlxtend's ``association_rules``:
   confidence ``s(XY)/s(X)``, lift ``confidence/s(Y)``, leverage ``s(XY) - s(X)s(Y)``,
   conviction ``(1 - s(Y))/(1 - confidence)`` (infinite when confidence is 1). Rules with
   confidence below ``min_confidence`` or lift below ``min_lift`` are dropped.

The minimum count is ``ceil(min_support * number_of_baskets)`` (float product, so 0.4 of 5
baskets is 2), which is what mlxtend's ``fpgrowth`` uses; the result equals
``fpgrowth`` + ``association_rules(metric="confidence")`` rule for rule.

Supports so low that the minimum count falls under 2 baskets, or that yield more than
``MAX_ITEMSETS`` frequent itemsets, are refused with :class:`MiningError` (they explode memory
and the number of rules while saying nothing reliable).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

#: Frequent itemsets allowed before mining is refused (memory and rule-count guard).
MAX_ITEMSETS = 1_000_000

#: The smallest minimum count (in baskets) accepted.
MIN_COUNT_FLOOR = 2


@dataclass(frozen=True)
class Rule:
    """One association rule ``antecedent -> consequent`` and its metrics.

    ``antecedent`` and ``consequent`` are sorted tuples of SKUs; ``support`` is the share of
    baskets holding both sides, ``conviction`` is ``inf`` when ``confidence`` is 1.
    """

    antecedent: tuple[str, ...]
    consequent: tuple[str, ...]
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float


class MiningError(ValueError):
    """Raised when the mining parameters are refused (invalid or too costly)."""


def _prepare(baskets: Iterable[Iterable[str]], max_basket_size: int) -> tuple[list[list[str]], int]:
    """Each basket de-duplicated, those over ``max_basket_size`` distinct SKUs left out; and
    how many were left out."""
    prepared = []
    left_out = 0
    for basket in baskets:
        distinct = list(dict.fromkeys(basket))
        if len(distinct) > max_basket_size:
            left_out += 1
        else:
            prepared.append(distinct)
    return prepared, left_out


def _min_count(min_support: float, n: int) -> int:
    """``ceil(min_support * n)`` with the float product, exactly as mlxtend's ``fpgrowth``."""
    return math.ceil(min_support * n)


def _frequent_itemsets(
    bits: np.ndarray, counts: np.ndarray, min_count: int, max_length: int | None
) -> dict[tuple[int, ...], int]:
    """Eclat: every frequent itemset (as sorted item indices) with its basket count.

    ``bits`` holds one row of ``uint64`` words per frequent item (rows ordered by the item
    index), ``counts`` their counts.
    """
    found: dict[tuple[int, ...], int] = {(i,): int(c) for i, c in enumerate(counts)}
    if max_length is not None and max_length < 2:
        return found
    stack: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = [
        ((), np.arange(len(counts)), bits)
    ]
    while stack:
        prefix, items, rows = stack.pop()
        depth = len(prefix) + 1  # length of the itemsets held by this node
        grow = max_length is None or depth + 1 <= max_length
        if not grow:
            continue
        for i in range(len(items) - 1):
            later = rows[i + 1 :] & rows[i]
            later_counts = np.bitwise_count(later).sum(axis=1)
            keep = later_counts >= min_count
            if not keep.any():
                continue
            head = (*prefix, int(items[i]))
            kept_items = items[i + 1 :][keep]
            for item, count in zip(kept_items.tolist(), later_counts[keep].tolist(), strict=True):
                found[(*head, item)] = count
            if len(found) > MAX_ITEMSETS:
                raise MiningError(
                    f"more than {MAX_ITEMSETS:,} frequent itemsets at this minimum support: "
                    "raise min_support (or lower max_length)"
                )
            if len(kept_items) > 1:
                stack.append((head, kept_items, later[keep]))
    return found


@dataclass(frozen=True)
class Mined:
    """What :func:`mine_counted` found: the rules, how many itemsets were frequent, and how
    many baskets were left out for holding more than ``max_basket_size`` distinct SKUs."""

    rules: list[Rule]
    itemsets: int
    left_out: int = 0


def mine(
    baskets: Iterable[Iterable[str]],
    *,
    min_support: float,
    min_confidence: float = 0.0,
    min_lift: float = 0.0,
    max_length: int | None = None,
    max_basket_size: int = 50,
) -> list[Rule]:
    """The rules of :func:`mine_counted` (same arguments, same refusals)."""
    return mine_counted(
        baskets,
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        max_length=max_length,
        max_basket_size=max_basket_size,
    ).rules


def mine_counted(
    baskets: Iterable[Iterable[str]],
    *,
    min_support: float,
    min_confidence: float = 0.0,
    min_lift: float = 0.0,
    max_length: int | None = None,
    max_basket_size: int = 50,
) -> Mined:
    """Mine association rules from ``baskets`` (each an iterable of SKUs), counting the
    frequent itemsets (single items included) on the way.

    Duplicate SKUs within a basket count once; a basket with more than ``max_basket_size``
    distinct SKUs is left out. An itemset is frequent when it appears in at least
    ``ceil(min_support * number_of_baskets_kept)`` baskets;
    ``max_length`` bounds the itemset length (antecedent plus consequent). Rules are kept when
    ``confidence >= min_confidence`` and ``lift >= min_lift``, and are returned sorted by
    confidence then lift (both descending), then antecedent and consequent.

    Raises :class:`MiningError` when ``min_support`` is not in ``(0, 1]``, when it is so low
    that an itemset would need fewer than 2 baskets, when more than ``MAX_ITEMSETS`` frequent
    itemsets would be produced, or when ``max_length``/``max_basket_size`` are below 1.
    """
    if not (0.0 < min_support <= 1.0) or math.isnan(min_support):
        raise MiningError(f"min_support must be in (0, 1], got {min_support!r}")
    if max_length is not None and max_length < 1:
        raise MiningError(f"max_length must be at least 1, got {max_length!r}")
    if max_basket_size < 1:
        raise MiningError(f"max_basket_size must be at least 1, got {max_basket_size!r}")
    prepared, left_out = _prepare(baskets, max_basket_size)
    n = len(prepared)
    if n == 0:
        return Mined([], 0, left_out)
    min_count = _min_count(min_support, n)
    if min_count < MIN_COUNT_FLOOR:
        raise MiningError(
            f"min_support {min_support} over {n:,} baskets means itemsets seen in fewer than "
            f"{MIN_COUNT_FLOOR} baskets: raise min_support to at least {MIN_COUNT_FLOOR / n:.6g}"
        )

    item_counts: dict[str, int] = {}
    for basket in prepared:
        for sku in basket:
            item_counts[sku] = item_counts.get(sku, 0) + 1
    frequent = sorted(
        (sku for sku, count in item_counts.items() if count >= min_count),
        key=lambda sku: (item_counts[sku], sku),
    )
    if not frequent:
        return Mined([], 0, left_out)
    index = {sku: i for i, sku in enumerate(frequent)}

    # Vertical layout: one bit per basket, one row per frequent item.
    rows: list[int] = []
    cols: list[int] = []
    for b, basket in enumerate(prepared):
        for sku in basket:
            i = index.get(sku)
            if i is not None:
                rows.append(i)
                cols.append(b)
    words = (n + 63) // 64
    item_rows = np.asarray(rows, dtype=np.int64)
    basket_cols = np.asarray(cols, dtype=np.int64)
    bits = np.zeros(len(frequent) * words, dtype=np.uint64)
    np.bitwise_or.at(
        bits,
        item_rows * words + basket_cols // 64,
        np.left_shift(np.uint64(1), (basket_cols % 64).astype(np.uint64)),
    )
    bits = bits.reshape(len(frequent), words)
    counts = np.array([item_counts[sku] for sku in frequent], dtype=np.int64)

    found = _frequent_itemsets(bits, counts, min_count, max_length)
    return Mined(_rules(found, frequent, n, min_confidence, min_lift), len(found), left_out)


def _rules(
    found: dict[tuple[int, ...], int],
    names: list[str],
    n: int,
    min_confidence: float,
    min_lift: float,
) -> list[Rule]:
    """Rules from every frequent itemset of two or more items, filtered and sorted."""
    support = {key: count / n for key, count in found.items()}
    out: list[Rule] = []
    for itemset, s_ac in support.items():
        size = len(itemset)
        if size < 2:
            continue
        for k in range(1, size):
            for antecedent in combinations(itemset, k):
                consequent = tuple(i for i in itemset if i not in antecedent)
                s_a = support[antecedent]
                confidence = s_ac / s_a
                if confidence < min_confidence:
                    continue
                s_c = support[consequent]
                lift = confidence / s_c
                if lift < min_lift:
                    continue
                conviction = math.inf if confidence >= 1.0 else (1.0 - s_c) / (1.0 - confidence)
                out.append(
                    Rule(
                        antecedent=tuple(sorted(names[i] for i in antecedent)),
                        consequent=tuple(sorted(names[i] for i in consequent)),
                        support=s_ac,
                        confidence=confidence,
                        lift=lift,
                        leverage=s_ac - s_a * s_c,
                        conviction=conviction,
                    )
                )
    out.sort(key=lambda r: (-r.confidence, -r.lift, r.antecedent, r.consequent))
    return out
