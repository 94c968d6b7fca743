"""RFM scores and segments equal an independent computation, on data with many ties."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random

from sqlalchemy import insert

from core.customers.models import Customer
from plugins.analytical import rfm
from plugins.operational.models import Order

AS_OF = dt.date(2026, 6, 30)


def _ntile(ordered_ids: list[int], buckets: int = 5) -> dict[int, int]:
    """SQL's NTILE written out: sizes n // k, the first n % k buckets one larger."""
    n = len(ordered_ids)
    base, extra = divmod(n, buckets)
    scores, start = {}, 0
    for bucket in range(1, buckets + 1):
        size = base + (1 if bucket <= extra else 0)
        for cid in ordered_ids[start : start + size]:
            scores[cid] = bucket
        start += size
    return scores


def _reference(orders: list[tuple[int, dt.datetime, int, str]], as_of: dt.date) -> dict[int, dict]:
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    metrics: dict[int, dict] = {}
    for customer, placed, total, status in orders:
        if placed >= end or status in ("cancelled", "returned"):
            continue
        m = metrics.setdefault(customer, {"last": placed, "frequency": 0, "monetary": 0})
        m["last"] = max(m["last"], placed)
        m["frequency"] += 1
        m["monetary"] += total
    for m in metrics.values():
        m["recency_days"] = (as_of - m["last"].date()).days
    ids = sorted(metrics)
    r = _ntile(sorted(ids, key=lambda c: (-metrics[c]["recency_days"], c)))
    f = _ntile(sorted(ids, key=lambda c: (metrics[c]["frequency"], c)))
    m_ = _ntile(sorted(ids, key=lambda c: (metrics[c]["monetary"], c)))
    return {
        c: {
            "recency_days": metrics[c]["recency_days"],
            "frequency": metrics[c]["frequency"],
            "monetary": metrics[c]["monetary"],
            "r": r[c],
            "f": f[c],
            "m": m_[c],
        }
        for c in ids
    }


def _generate(crm, customers: int = 237, seed: int = 3) -> list[tuple[int, dt.datetime, int, str]]:
    rng = random.Random(seed)
    orders = []
    with crm.db.write() as session:
        now = dt.datetime.now(dt.UTC)
        ids = [
            session.execute(
                insert(Customer).values(
                    kind="person",
                    display_name=f"K{i}",
                    search_key=f"k{i}",
                    archived=False,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            ).inserted_primary_key[0]
            for i in range(customers)
        ]
        rows = []
        for number, cid in enumerate(ids):
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 5))):  # few values: many ties
                placed = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(
                    days=rng.choice((0, 30, 60, 120, 175, 180, 181, 200))  # some after AS_OF
                )
                total = rng.choice((100_000, 250_000, 250_000, 1_000_000))
                status = rng.choices(("delivered", "cancelled", "returned"), (8, 1, 1))[0]
                rows.append(
                    {
                        "ref": f"O{number}-{len(rows)}",
                        "customer_id": cid,
                        "placed_at": placed,
                        "total_minor": total,
                        "status": status,
                        "currency": "VND",
                        "created_at": now,
                        "version": 1,
                    }
                )
                orders.append((cid, placed, total, status))
        session.execute(insert(Order), rows)
    return orders


def test_scores_equal_an_independent_computation_with_ties(an_crm):
    orders = _generate(an_crm)
    expected = _reference(orders, AS_OF)
    with an_crm.db.session() as session:
        got = {row["customer_id"]: row for row in rfm.compute(session, AS_OF)}
    assert set(got) == set(expected) and len(got) > 100
    for cid, want in expected.items():
        row = got[cid]
        assert {k: row[k] for k in want} == want, cid
        assert row["segment"] == rfm.segment_of(want["r"], want["f"])
    assert len({row["frequency"] for row in got.values()}) < 10  # ties were really there


def test_every_r_f_pair_has_exactly_one_segment():
    for r in range(1, 6):
        for f in range(1, 6):
            matching = [name for name, rs, fs in rfm.SEGMENTS if r in rs and f in fs]
            assert len(matching) == 1, (r, f, matching)
    assert rfm.segment_of(5, 5) == "champions" and rfm.segment_of(1, 5) == "cant_lose"


def test_cli_stores_a_snapshot_and_writes_the_csv(an_crm, cli, tmp_path):
    orders = _generate(an_crm, customers=60, seed=9)
    out = tmp_path / "rfm.csv"
    env = {"CRM_LOAD_PLUGINS": "operational,analytical"}
    result = cli(
        "analytics",
        "rfm",
        "--as-of",
        AS_OF.isoformat(),
        "--out",
        str(out),
        "--format",
        "json",
        **env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    expected = _reference(orders, AS_OF)
    assert summary["customers"] == len(expected) and sum(summary["segments"].values()) == len(
        expected
    )
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "customer_id",
        "external_ref",
        "recency_days",
        "frequency",
        "monetary",
        "r",
        "f",
        "m",
        "segment",
    ]
    assert {int(r["customer_id"]): int(r["r"]) for r in rows} == {
        c: v["r"] for c, v in expected.items()
    }
    again = cli("analytics", "rfm", "--as-of", AS_OF.isoformat(), **env)  # same date: replaced
    assert again.exit_code == 0
    with an_crm.db.session() as session:
        from sqlalchemy import func, select

        from plugins.analytical.models import RfmScore, Run

        assert session.scalar(select(func.count()).select_from(Run)) == 1
        assert session.scalar(select(func.count()).select_from(RfmScore)) == len(expected)
    bad = cli("analytics", "rfm", "--as-of", "yesterday", **env)
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_migration_matches_the_models(an_crm):
    from tests.schema_diff import module_diffs

    assert module_diffs(an_crm.db.engine, "analytical_") == []


def test_the_customer_360_shows_the_latest_segment(an_crm):
    import re

    from fastapi.testclient import TestClient

    from core.web.app import create_app
    from tests.web.conftest import Browser

    orders = _generate(an_crm, customers=30, seed=5)
    client = Browser(TestClient(create_app(an_crm), base_url="http://testserver"))
    assert client.login("admin@example.com", "Admin-pass-123").status_code == 303
    customer = orders[0][0]
    assert "crm analytics rfm" in client.get(f"/ui/slots/analytical.rfm/{customer}").text
    with an_crm.db.write() as session:
        rfm.refresh(session, AS_OF)
    expected = _reference(orders, AS_OF)[customer]
    panel = client.get(f"/ui/slots/analytical.rfm/{customer}").text
    assert f"R{expected['r']} F{expected['f']} M{expected['m']}" in panel
    assert re.search(r'data-field="segment">[^<]+<', panel)


# --- the stored snapshot against pandas ----------------------------------------------------

#: The issue's segment rules, written out again as pandas queries on the R and F scores.
ISSUE_RULES = (
    ("champions", "R == 5 and F >= 4"),
    ("loyal", "R in (3, 4) and F >= 4"),
    ("potential_loyalists", "R >= 4 and F in (2, 3)"),
    ("new", "R == 5 and F == 1"),
    ("promising", "R == 4 and F == 1"),
    ("need_attention", "R == 3 and F == 3"),
    ("about_to_sleep", "R == 3 and F <= 2"),
    ("at_risk", "R <= 2 and F in (3, 4)"),
    ("cant_lose", "R <= 2 and F == 5"),
    ("hibernating", "R <= 2 and F <= 2"),
)


def _quintile(position, n: int):
    """NTILE(5) of 1-based positions 1..n: sizes n // 5, the first n % 5 one larger."""
    import numpy as np

    base, extra = divmod(n, 5)
    boundary = extra * (base + 1)
    position = np.asarray(position, dtype=np.int64)
    return np.where(
        position <= boundary,
        (position - 1) // (base + 1) + 1,
        extra + (position - boundary - 1) // max(base, 1) + 1,
    )


def _pandas_reference(orders, as_of: dt.date):
    """RFM with pandas: ranks with method "first" over customers sorted by id."""
    import pandas as pd

    frame = pd.DataFrame(orders, columns=["customer_id", "placed_at", "total", "status"])
    end = pd.Timestamp(as_of + dt.timedelta(days=1), tz="UTC")
    kept = frame[(frame.placed_at < end) & ~frame.status.isin(["cancelled", "returned"])]
    per = (
        kept.groupby("customer_id")
        .agg(last=("placed_at", "max"), frequency=("total", "size"), monetary=("total", "sum"))
        .sort_index()
    )
    per["recency_days"] = (
        pd.Timestamp(as_of) - per["last"].dt.tz_localize(None).dt.normalize()
    ).dt.days
    n = len(per)
    per["r"] = _quintile(per["recency_days"].rank(method="first", ascending=False), n)
    per["f"] = _quintile(per["frequency"].rank(method="first"), n)
    per["m"] = _quintile(per["monetary"].rank(method="first"), n)
    per["segment"] = None
    for name, rule in ISSUE_RULES:
        matches = per.query(rule.replace("R", "r").replace("F", "f")).index
        assert per.loc[matches, "segment"].isna().all(), name  # the rules do not overlap
        per.loc[matches, "segment"] = name
    return per


def test_stored_snapshot_equals_pandas_with_rank_first(an_crm):
    from sqlalchemy import select

    from plugins.analytical.models import RfmScore

    orders = _generate(an_crm, customers=1_003, seed=17)  # 1,003 is not a multiple of 5
    expected = _pandas_reference(orders, AS_OF)
    assert expected.segment.notna().all() and len(expected) % 5 != 0
    assert expected.frequency.nunique() < 12 and expected.recency_days.nunique() < 10  # ties
    with an_crm.db.write() as session:
        run, counts = rfm.refresh(session, AS_OF)
        stored = {
            s.customer_id: (s.recency_days, s.frequency, s.monetary_minor, s.r, s.f, s.m, s.segment)
            for s in session.scalars(select(RfmScore).where(RfmScore.run_id == run.id))
        }
        summary, rows = run.summary, run.rows
    want = {
        int(cid): (int(x.recency_days), int(x.frequency), int(x.monetary), int(x.r), int(x.f),
                   int(x.m), x.segment)
        for cid, x in expected.iterrows()
    }  # fmt: skip
    assert stored == want
    sizes = expected.segment.value_counts().to_dict()
    assert dict(counts) == sizes and rows == len(expected)
    assert {k: v for k, v in summary["segments"].items() if v} == sizes
    grid = expected.groupby(["r", "f"]).size()
    assert summary["grid"] == [[int(grid.get((r, f), 0)) for f in range(1, 6)] for r in range(1, 6)]
    champions = expected[expected.segment == "champions"]
    assert summary["averages"]["champions"] == {
        "recency_days": round(champions.recency_days.mean(), 1),
        "frequency": round(champions.frequency.mean(), 2),
        "monetary_minor": int(champions.monetary.sum()) // len(champions),
    }
