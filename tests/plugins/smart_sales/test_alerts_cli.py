"""``crm smart-sales generate``, ``expire`` and ``alerts``."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import update

from plugins.smart_sales.models import Alert
from tests.plugins.smart_sales.helpers import (
    AN,
    BINH,
    add_run,
    alerts_of,
    customer,
    days_ago,
    now,
    order,
    product,
)

ENV = {"CRM_LOAD_PLUGINS": "operational,analytical,smart_sales"}


def _shop(crm) -> dict[str, int]:
    """Rule A -> C; Hoa (An's) and Hùng (Bình's) bought A; Hoa also holds a basic model that
    upgrades to a premium one."""
    with crm.db.write() as session:
        ids = {
            "A": product(session, crm, "NOI-COM", name="Nồi cơm điện", price=900_000),
            "C": product(session, crm, "MAY-XAY", name="Máy xay", price=500_000, cost=300_000),
            "pro": product(session, crm, "PRO", name="Máy lọc Cao cấp", price=5_000_000),
        }
        ids["basic"] = product(session, crm, "CB", name="Máy lọc Cơ bản", upgrade_to=ids["pro"])
        ids["hoa"] = customer(session, "Nguyễn Thị Hoa", crm.people[AN])
        ids["hung"] = customer(session, "Trần Văn Hùng", crm.people[BINH])
        order(session, crm, ids["hoa"], [ids["A"], ids["basic"]], at=days_ago(20))
        order(session, crm, ids["hung"], [ids["A"]], at=days_ago(20))
        add_run(session, [([ids["A"]], [ids["C"]], 0.1, 0.4, 2.0)])
    return ids


def test_generate(ss_crm, cli):
    shop = _shop(ss_crm)
    done = cli("smart-sales", "generate", "--kind", "up_sell", **ENV)
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "1 alert(s) raised."
    done = cli("smart-sales", "generate", "--customer", str(shop["hung"]), **ENV)
    assert done.output.strip() == "1 alert(s) raised."
    done = cli("smart-sales", "generate", **ENV)
    assert done.output.strip() == "1 alert(s) raised."  # Hoa's cross-sell
    assert cli("smart-sales", "generate", **ENV).output.strip() == "0 alert(s) raised."
    with ss_crm.db.session() as session:
        found = alerts_of(session)
    assert sorted((a.customer_id, a.kind, a.source) for a in found) == sorted(
        [
            (shop["hoa"], "up_sell", "generate"),
            (shop["hung"], "cross_sell", "generate"),
            (shop["hoa"], "cross_sell", "generate"),
        ]
    )


def test_generate_refuses_bad_options(ss_crm, cli):
    done = cli("smart-sales", "generate", "--kind", "magic", **ENV)
    assert done.exit_code != 0 and "magic" in done.output


def test_expire(ss_crm, cli):
    _shop(ss_crm)
    cli("smart-sales", "generate", **ENV)
    assert cli("smart-sales", "expire", **ENV).output.strip() == "0 alert(s) expired."
    with ss_crm.db.write() as session:
        session.execute(
            update(Alert)
            .where(Alert.kind == "up_sell")
            .values(expires_at=now() - dt.timedelta(minutes=1))
        )
    assert cli("smart-sales", "expire", **ENV).output.strip() == "1 alert(s) expired."
    with ss_crm.db.session() as session:
        assert [a.state for a in alerts_of(session, kind="up_sell")] == ["expired"]


def test_alerts_lists_every_alert(ss_crm, cli):
    shop = _shop(ss_crm)
    cli("smart-sales", "generate", **ENV)
    done = cli("smart-sales", "alerts", "--format", "json", **ENV)
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert len(data) == 3
    by_kind = {(d["customer_id"], d["kind"]): d for d in data}
    hoa = by_kind[(shop["hoa"], "cross_sell")]
    assert hoa["customer_name"] == "Nguyễn Thị Hoa" and hoa["owner"] == AN
    assert hoa["headline"] == "Offer Máy xay"
    assert hoa["reason"] == (
        "40% of customers who bought Nồi cơm điện also bought Máy xay, 2× the usual rate."
    )
    assert hoa["expected_value_minor"] == 80_000
    upgrade = by_kind[(shop["hoa"], "up_sell")]
    assert upgrade["from_product_name"] == "Máy lọc Cơ bản"

    mine = json.loads(cli("smart-sales", "alerts", "--user", AN, "--format", "json", **ENV).output)
    assert {d["customer_id"] for d in mine} == {shop["hoa"]}
    kind = json.loads(
        cli("smart-sales", "alerts", "--kind", "up_sell", "--format", "json", **ENV).output
    )
    assert [d["kind"] for d in kind] == ["up_sell"]
    one = cli(
        "smart-sales", "alerts", "--customer", str(shop["hung"]), "--format", "json", **ENV
    ).output
    assert [d["customer_id"] for d in json.loads(one)] == [shop["hung"]]

    table = cli("smart-sales", "alerts", **ENV).output
    assert "Nguyễn Thị Hoa" in table and "Offer Máy xay" in table and "3 alert(s)" in table


def test_alerts_by_state(ss_crm, cli):
    _shop(ss_crm)
    cli("smart-sales", "generate", **ENV)
    with ss_crm.db.write() as session:
        session.execute(
            update(Alert).where(Alert.kind == "up_sell").values(state="dismissed", open_key=None)
        )

    def count(*states: str) -> int:
        args = [a for s in states for a in ("--state", s)]
        done = cli("smart-sales", "alerts", *args, "--format", "json", **ENV)
        return len(json.loads(done.output))

    assert count() == 2  # open ones by default
    assert count("dismissed") == 1
    assert count("all") == 3
    assert count("new", "dismissed") == 3
    assert count("converted") == 0


def test_alerts_for_an_unknown_user(ss_crm, cli):
    done = cli("smart-sales", "alerts", "--user", "nobody@example.com", **ENV)
    assert done.exit_code != 0
    assert "nobody@example.com" in done.output
