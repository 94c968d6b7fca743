"""Segment definitions evaluated in SQL equal a plain-Python reference, on SQLite and PostgreSQL;
invalid definitions are refused naming the field; saved segments check their version."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

import pytest
from sqlalchemy import insert, update
from sqlalchemy.orm.exc import StaleDataError

from core.customers.models import Customer, CustomerTag
from plugins.analytical import segments
from plugins.analytical.models import ClvScore, CustomerClass, Profit, RfmScore, Run
from plugins.operational.models import Order, OrderLine, Product

TODAY = dt.date(2026, 6, 30)
RFM_NAMES = ("champions", "loyal", "new", "hibernating", "at_risk")
PRODUCTS = (("TEA-1", "tea"), ("TEA-2", "tea"), ("COF-1", "coffee"), ("COF-2", "coffee"))
PRODUCTS += (("MISC", None), ("CUP-1", "cups"))


@dataclass
class World:
    """What the generator wrote, as plain Python for the reference."""

    ids: list[int] = field(default_factory=list)
    archived: set[int] = field(default_factory=set)
    country: dict[int, str | None] = field(default_factory=dict)
    tags: dict[int, set[str]] = field(default_factory=dict)
    orders: list[dict] = field(default_factory=list)  # customer, placed, status, skus
    rfm: dict[int, str] = field(default_factory=dict)
    klass: dict[int, str] = field(default_factory=dict)
    tier: dict[int, str] = field(default_factory=dict)
    clv: dict[int, int] = field(default_factory=dict)


def _run(session, kind: str, as_of: dt.date) -> int:
    return session.execute(
        insert(Run).values(
            kind=kind, as_of=as_of, params={}, rows=0, computed_at=dt.datetime.now(dt.UTC)
        )
    ).inserted_primary_key[0]


def _customers(session, rng: random.Random, world: World, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    for i in range(count):
        archived = rng.random() < 0.1
        country = rng.choice(("VN", "VN", "US", "FR", None))
        cid = session.execute(
            insert(Customer).values(
                kind="person",
                display_name=f"S{i}",
                search_key=f"s{i}",
                country=country,
                archived=archived,
                created_at=now,
                updated_at=now,
                version=1,
            )
        ).inserted_primary_key[0]
        world.ids.append(cid)
        world.country[cid] = country
        if archived:
            world.archived.add(cid)
        world.tags[cid] = {t for t in ("vip", "b2b", "newsletter") if rng.random() < 0.3}
        for tag in world.tags[cid]:
            session.execute(insert(CustomerTag).values(customer_id=cid, tag=tag))


def _orders(session, rng: random.Random, world: World) -> None:
    now = dt.datetime.now(dt.UTC)
    product_ids = {}
    for sku, category in PRODUCTS:
        product_ids[sku] = session.execute(
            insert(Product).values(
                sku=sku,
                name=sku,
                category=category,
                price_minor=1000,
                currency="VND",
                active=True,
                created_at=now,
                updated_at=now,
                version=1,
            )
        ).inserted_primary_key[0]
    for cid in world.ids:
        for n in range(rng.choice((0, 0, 1, 2, 3, 4))):
            days = rng.choice((0, 1, 29, 30, 31, 89, 90, 91, 200, 400))
            placed = dt.datetime.combine(
                TODAY - dt.timedelta(days=days), dt.time(rng.choice((0, 9, 23))), tzinfo=dt.UTC
            )
            status = rng.choices(("delivered", "placed", "cancelled", "returned"), (6, 2, 1, 1))[0]
            order_id = session.execute(
                insert(Order).values(
                    ref=f"S{cid}-{n}",
                    customer_id=cid,
                    placed_at=placed,
                    total_minor=1000,
                    status=status,
                    currency="VND",
                    created_at=now,
                    version=1,
                )
            ).inserted_primary_key[0]
            skus = rng.sample([s for s, _ in PRODUCTS], rng.choice((1, 1, 2)))
            for sku in skus:
                session.execute(
                    insert(OrderLine).values(
                        order_id=order_id,
                        product_id=product_ids[sku],
                        quantity=1,
                        unit_price_minor=1000,
                        discount_minor=0,
                        amount_minor=1000,
                    )
                )
            world.orders.append(
                {"customer": cid, "placed": placed, "status": status, "skus": set(skus)}
            )


def _snapshots(session, rng: random.Random, world: World) -> None:
    """A latest run of each kind, and an older one (inserted after it) that must be ignored."""
    for kind, model, column, values, target in (
        ("rfm", RfmScore, "segment", RFM_NAMES, world.rfm),
        ("classes", CustomerClass, "klass", segments.CLASSES, world.klass),
        ("profit", Profit, "tier", segments.TIERS, world.tier),
        ("clv", ClvScore, "clv_minor", (0, 5_000, 10_000, 20_000, 50_000), world.clv),
    ):
        latest = _run(session, kind, TODAY)
        older = _run(session, kind, TODAY - dt.timedelta(days=7))
        for run_id, store in ((latest, True), (older, False)):
            rows = []
            for cid in world.ids:
                if rng.random() < 0.2:
                    continue
                value = rng.choice(values)
                if store:
                    target[cid] = value
                rows.append({"run_id": run_id, "customer_id": cid, column: value, **_filler(kind)})
            session.execute(insert(model), rows)


def _filler(kind: str) -> dict:
    return {
        "rfm": {"recency_days": 1, "frequency": 1, "monetary_minor": 1, "r": 1, "f": 1, "m": 1},
        "classes": {"reason": "test"},
        "profit": {
            "revenue_minor": 0,
            "cogs_minor": 0,
            "cost_to_serve_minor": 0,
            "margin_minor": 0,
        },
        "clv": {
            "frequency": 0,
            "recency": 0.0,
            "t": 1.0,
            "monetary_minor": 0,
            "expected_purchases": 0.0,
            "probability_alive": 1.0,
        },
    }[kind]


def build_world(crm, count: int = 160, seed: int = 11) -> World:
    """Customers, tags, products, orders with lines and snapshots, written with ``insert()``."""
    rng = random.Random(seed)
    world = World()
    with crm.db.write() as session:
        _customers(session, rng, world, count)
        _orders(session, rng, world)
        _snapshots(session, rng, world)
    return world


# --- the reference --------------------------------------------------------------------------


def _counted(world: World, cid: int) -> list[dict]:
    return [
        o
        for o in world.orders
        if o["customer"] == cid and o["status"] not in ("cancelled", "returned")
    ]


def _category(sku: str) -> str | None:
    return dict(PRODUCTS)[sku]


def _matches(world: World, cid: int, d: dict) -> bool:
    orders = _counted(world, cid)
    bought_skus = set().union(*(o["skus"] for o in orders)) if orders else set()
    bought_categories = {_category(s) for s in bought_skus} - {None}
    if cid in world.archived:
        return False
    if "rfm_segments" in d and world.rfm.get(cid) not in d["rfm_segments"]:
        return False
    if "classes" in d and world.klass.get(cid) not in d["classes"]:
        return False
    if "tiers" in d and world.tier.get(cid) not in d["tiers"]:
        return False
    if "clv_min" in d or "clv_max" in d:
        value = world.clv.get(cid)
        if value is None or value < d.get("clv_min", -(10**18)) or value > d.get("clv_max", 10**18):
            return False
    if "tags" in d and not world.tags[cid] & set(d["tags"]):
        return False
    if "countries" in d and world.country[cid] not in d["countries"]:
        return False
    if "bought_products" in d and not bought_skus & set(d["bought_products"]):
        return False
    if "not_bought_products" in d and bought_skus & set(d["not_bought_products"]):
        return False
    if "bought_categories" in d and not bought_categories & set(d["bought_categories"]):
        return False
    if "not_bought_categories" in d and bought_categories & set(d["not_bought_categories"]):
        return False
    last = max((o["placed"] for o in orders), default=None)
    if "last_purchase_within_days" in d:
        start = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC) - dt.timedelta(
            days=d["last_purchase_within_days"]
        )
        if last is None or last < start:
            return False
    if "last_purchase_before_days" in d:
        start = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC) - dt.timedelta(
            days=d["last_purchase_before_days"]
        )
        if last is None or last >= start:
            return False
    return True


def reference(world: World, definition: dict) -> set[int]:
    """The customers ``definition`` matches, computed in plain Python."""
    return {cid for cid in world.ids if _matches(world, cid, definition)}


DEFINITIONS = (
    {"rfm_segments": ["champions", "new"]},
    {"classes": ["loyal"]},
    {"tiers": ["a", "B"]},
    {"clv_min": 10_000},
    {"clv_max": 5_000},
    {"clv_min": 5_000, "clv_max": 20_000},
    {"tags": ["VIP", "b2b"]},
    {"countries": ["vn", "FR"]},
    {"bought_products": ["TEA-1"]},
    {"not_bought_products": ["TEA-1", "COF-2"]},
    {"bought_categories": ["coffee"]},
    {"not_bought_categories": ["tea"]},
    {"last_purchase_within_days": 30},
    {"last_purchase_before_days": 90},
    {"last_purchase_within_days": 200, "last_purchase_before_days": 30},
    {"tiers": ["A"], "countries": ["VN"], "bought_categories": ["tea", "cups"]},
    {
        "rfm_segments": ["at_risk", "hibernating"],
        "not_bought_categories": ["coffee"],
        "tags": ["vip"],
    },
    {},
)


def test_each_criterion_equals_the_reference(an_crm):
    world = build_world(an_crm)
    with an_crm.db.session() as session:
        for definition in DEFINITIONS:
            got = set(segments.customer_ids(session, an_crm, definition, today=TODAY))
            want = reference(world, segments.clean(definition))
            assert got == want, definition
            if len(definition) == 1:  # a single criterion really filters something
                assert 0 < len(want) < len(world.ids) - len(world.archived), definition


def test_the_boundaries_of_the_purchase_windows(an_crm):
    """An order at 00:00 of ``today - N`` is "within N days"; cancelled orders do not count."""
    world = build_world(an_crm, count=60, seed=5)
    midnight = {
        o["customer"]
        for o in world.orders
        if o["placed"].hour == 0 and o["status"] not in ("cancelled", "returned")
    }
    assert midnight  # the generator placed orders exactly on the cut-offs
    with an_crm.db.session() as session:
        for days in (1, 29, 30, 31, 90, 91):
            for key in ("last_purchase_within_days", "last_purchase_before_days"):
                got = set(segments.customer_ids(session, an_crm, {key: days}, today=TODAY))
                assert got == reference(world, {key: days}), (key, days)


def test_preview_counts_and_lists_the_first_twenty(an_crm):
    world = build_world(an_crm)
    definition = {"countries": ["VN"]}
    want = sorted(reference(world, definition))
    with an_crm.db.session() as session:
        found = segments.preview(session, definition, today=TODAY)
        assert found.count == len(want) > segments.PREVIEW_SIZE
        assert [c["id"] for c in found.customers] == want[: segments.PREVIEW_SIZE]
        some = Customer.id.in_(want[:3])
        assert segments.preview(session, definition, visible=some).count == 3


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"colour": ["red"]}, "definition.colour"),
        ({"rfm_segments": ["winners"]}, "definition.rfm_segments"),
        ({"classes": ["vip"]}, "definition.classes"),
        ({"tiers": ["D"]}, "definition.tiers"),
        ({"clv_min": "lots"}, "definition.clv_min"),
        ({"clv_min": 10, "clv_max": 5}, "definition.clv_min"),
        ({"tags": []}, "definition.tags"),
        ({"tags": [""]}, "definition.tags"),
        ({"countries": ["VNM"]}, "definition.countries"),
        ({"bought_products": "TEA-1"}, "definition.bought_products"),
        ({"last_purchase_within_days": 0}, "definition.last_purchase_within_days"),
        (
            {"last_purchase_within_days": 30, "last_purchase_before_days": 60},
            "definition.last_purchase_within_days",
        ),
        (["tiers"], "definition"),
    ],
)
def test_invalid_definitions_name_the_field(definition, field):
    with pytest.raises(segments.Invalid) as caught:
        segments.parse(definition)
    assert field in caught.value.errors, caught.value.errors


def test_saved_segments_are_unique_versioned_and_audited(an_crm):
    from sqlalchemy import select

    from core.models import AuditLog

    with an_crm.db.write() as session:
        segment = segments.create_segment(session, " Best  VN ", {"countries": ["vn"]}, "top")
        segment_id = segment.id
        assert segment.name == "Best VN" and segment.definition == {"countries": ["VN"]}
    with an_crm.db.write() as session, pytest.raises(segments.Conflict):
        segments.create_segment(session, "Best VN", {})
    with an_crm.db.write() as session, pytest.raises(segments.Invalid) as caught:
        segments.update_segment(
            session, session.get(segments.Segment, segment_id), {"definition": {"x": 1}}, 1
        )
    assert "definition.x" in caught.value.errors
    with an_crm.db.write() as session:
        segment = session.get(segments.Segment, segment_id)
        segments.update_segment(session, segment, {"definition": {"tiers": ["A"]}}, 1)
    with an_crm.db.write() as session, pytest.raises(segments.StaleVersion):
        segments.update_segment(
            session, session.get(segments.Segment, segment_id), {"name": "x"}, 1
        )
    # the SQL check too: another writer bumped the version after we read the row
    with pytest.raises(StaleDataError), an_crm.db.write() as session:
        segment = session.get(segments.Segment, segment_id)
        table = segments.Segment.__table__
        session.connection().execute(
            update(table).where(table.c.id == segment_id).values(name="y", version=3)
        )
        segments.update_segment(session, segment, {"name": "z"}, 2)
    with an_crm.db.session() as session:
        assert session.get(segments.Segment, segment_id).version == 2
        logged = session.scalars(
            select(AuditLog.action).where(AuditLog.model == "analytical_segment")
        ).all()
        assert "create" in logged and "update" in logged
    assert json.dumps(segments.clean({"tags": ["VIP", "vip"]})) == '{"tags": ["vip"]}'
