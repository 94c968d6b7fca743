"""``crm smart-sales mine|rules|runs|mute|unmute``: rules equal to mlxtend's over orders built
from the real baskets, output formats, refusals that name the option, stored rules and runs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder
from sqlalchemy import func, select

from plugins.smart_sales.models import MiningRun, MutedRule, Rule
from tests.plugins.smart_sales.test_runs import (
    SMALL,
    START,
    count,
    load_sku_baskets,
    one_customer_per_basket,
    read_baskets,
)

PLUGINS = "operational,analytical,smart_sales"
METRICS = ("support", "confidence", "lift", "leverage", "conviction")
REAL = 3_000  # real baskets loaded as orders


def crm_cmd(cli, *args: str, **env: str):
    """``crm smart-sales ARGS`` in-process against the test database."""
    return cli("smart-sales", *args, CRM_LOAD_PLUGINS=PLUGINS, **env)


def mine_json(cli, *args: str, **env: str) -> dict:
    result = crm_cmd(cli, "mine", "--format", "json", *args, **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def reference(baskets: list[list[str]], min_support: float, max_length: int) -> tuple:
    """mlxtend fpgrowth + association_rules: the number of itemsets and the rules as
    {(antecedent, consequent): metrics}."""
    encoder = TransactionEncoder()
    frame = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_length)
    rules = association_rules(
        itemsets, num_itemsets=len(frame), metric="confidence", min_threshold=0.0
    )
    return len(itemsets), {
        (frozenset(row.antecedents), frozenset(row.consequents)): {
            m: float(getattr(row, m)) for m in METRICS
        }
        for row in rules.itertuples()
    }


def assert_same_rules(printed: list[dict], theirs: dict) -> None:
    """The printed rules are the reference's, rule for rule, metrics within 1e-9."""
    ours = {(frozenset(r["antecedent"]), frozenset(r["consequent"])): r for r in printed}
    assert len(ours) == len(printed), "duplicate rules"
    assert set(ours) == set(theirs)
    for key, expected in theirs.items():
        for metric, value in expected.items():
            got = ours[key][metric]
            if math.isinf(value):
                assert got is None, (key, metric)  # JSON has no infinity
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (key, metric)


@pytest.fixture
def real(ss_crm) -> list[list[str]]:
    """The first ``REAL`` real baskets, loaded as orders of one customer."""
    baskets = read_baskets(REAL)
    load_sku_baskets(ss_crm, baskets)
    return baskets


def test_rules_equal_mlxtend_on_real_baskets(ss_crm, cli, real):
    found = mine_json(cli, "--min-support", "0.01", "--min-confidence", "0", "--min-lift", "0",
                      "--max-basket-size", "10000", "--no-alerts")  # fmt: skip
    itemsets, theirs = reference(real, 0.01, 3)
    assert len(theirs) > 100  # the comparison means something
    assert_same_rules(found["rules"], theirs)
    run = found["run"]
    assert (run["baskets"], run["capped"], run["itemsets"]) == (REAL, 0, itemsets)
    assert run["rules"] == len(theirs) and run["status"] == "ok"
    assert run["params"] == {
        "min_support": 0.01,
        "min_confidence": 0.0,
        "min_lift": 0.0,
        "max_length": 3,
        "max_basket_size": 10000,
        "since": None,
    }
    assert run["alerts_raised"] == 0 and run["duration_ms"] > 0
    first = found["rules"][0]
    assert set(first) >= {"antecedent", "consequent", "support", "confidence", "lift"}
    assert all(isinstance(s, str) for s in first["antecedent"] + first["consequent"])

    # The default cap (50 distinct products) leaves the big orders out; thresholds filter
    # exactly as they would mlxtend's rules.
    capped = mine_json(cli, "--min-support", "0.02", "--min-confidence", "0.3",
                       "--max-length", "2", "--no-alerts")  # fmt: skip
    small = [b for b in real if len(set(b)) <= 50]
    itemsets, theirs = reference(small, 0.02, 2)
    wanted = {k: v for k, v in theirs.items() if v["confidence"] >= 0.3 and v["lift"] >= 1.2}
    assert 0 < len(wanted) < len(theirs)
    assert_same_rules(capped["rules"], wanted)
    assert capped["run"]["capped"] == REAL - len(small) > 0
    assert (capped["run"]["baskets"], capped["run"]["itemsets"]) == (len(small), itemsets)


def test_table_output_and_summary(ss_crm, cli):
    load_sku_baskets(ss_crm, SMALL)
    result = crm_cmd(cli, "mine", "--min-support", "0.4", "--min-lift", "0", "--no-alerts")
    assert result.exit_code == 0, result.output
    assert "antecedent" in result.output and "confidence" in result.output
    assert "100.00%" in result.output and "∞" in result.output  # d -> b
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("run 1: 8 rules from 5 baskets (0 capped), 8 frequent itemsets, ")
    assert last.endswith("; 0 alerts raised")


def test_settings_give_the_defaults(ss_crm, cli):
    load_sku_baskets(ss_crm, SMALL)
    found = mine_json(cli, "--no-alerts", CRM_SMART_SALES_MIN_SUPPORT="40%",
                      CRM_SMART_SALES_MIN_LIFT="1.25")  # fmt: skip
    assert found["run"]["params"]["min_support"] == 0.4
    assert found["run"]["params"]["min_confidence"] == 0.2
    assert [(r["antecedent"], r["consequent"]) for r in found["rules"]] == [
        (["d"], ["b"]),
        (["b"], ["d"]),
    ]


def test_since(ss_crm, cli):
    later = START.replace(month=6)
    load_sku_baskets(ss_crm, [["a", "b"]] * 4 + [["c", "d"]] * 4,
                     placed_at=[START] * 4 + [later] * 4)  # fmt: skip
    found = mine_json(cli, "--min-support", "0.5", "--min-lift", "0", "--since", "2025-06-01",
                      "--no-alerts")  # fmt: skip
    assert found["run"]["params"]["since"] == "2025-06-01" and found["run"]["baskets"] == 4
    assert {r["antecedent"][0] for r in found["rules"]} == {"c", "d"}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--min-support", "0"], "--min-support"),
        (["--min-support", "1.5"], "--min-support"),
        (["--min-support", "nhiều"], "--min-support"),
        (["--min-confidence", "2"], "--min-confidence"),
        (["--min-lift", "-1"], "--min-lift"),
        (["--max-length", "1"], "--max-length"),
        (["--max-basket-size", "1"], "--max-basket-size"),
        (["--since", "2025-13-01"], "--since"),
        (["--since", "01/02/2025"], "--since"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_values_name_the_option_and_change_nothing(ss_crm, cli, args, option):
    load_sku_baskets(ss_crm, SMALL)
    result = crm_cmd(cli, "mine", *args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output
    assert count(ss_crm, MiningRun) == 0


def test_refused_mining_names_the_option_and_leaves_a_failed_run(ss_crm, cli):
    load_sku_baskets(ss_crm, SMALL)
    assert crm_cmd(cli, "mine", "--min-support", "0.4", "--no-alerts").exit_code == 0
    rules = count(ss_crm, Rule)
    result = crm_cmd(cli, "mine", "--min-support", "0.1", "--no-alerts")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: mining refused: --min-support 0.1 over 5 baskets means itemsets seen in fewer "
        "than 2 baskets: raise --min-support to at least 0.4"
    )
    with ss_crm.db.session() as session:
        statuses = session.execute(select(MiningRun.status, MiningRun.error)).all()
    assert [s for s, _ in statuses] == ["ok", "failed"] and "fewer than 2" in statuses[1][1]
    assert count(ss_crm, Rule) == rules


def test_rules_command(ss_crm, cli):
    result = crm_cmd(cli, "rules")
    assert result.exit_code == 1 and "no successful mining run yet" in result.stderr
    load_sku_baskets(ss_crm, SMALL)
    mined = mine_json(cli, "--min-support", "0.4", "--min-lift", "0", "--no-alerts")
    assert crm_cmd(cli, "mine", "--min-support", "0.1").exit_code == 1  # run 2 fails
    key = mined["rules"][0]["key"]
    assert crm_cmd(cli, "mute", key, "--reason", "hàng khuyến mãi").exit_code == 0

    shown = json.loads(crm_cmd(cli, "rules", "--format", "json").stdout)
    assert shown["run"]["id"] == mined["run"]["id"] == 1
    assert [r["key"] for r in shown["rules"]] == [r["key"] for r in mined["rules"]]
    assert [r["muted"] for r in shown["rules"]] == [True] + [False] * 7
    by_id = json.loads(crm_cmd(cli, "rules", "--run", "1", "--format", "json").stdout)
    assert by_id == shown
    table = crm_cmd(cli, "rules")
    assert table.exit_code == 0 and f"{key} (muted)" in table.output

    failed = crm_cmd(cli, "rules", "--run", "2")
    assert failed.exit_code == 1 and failed.stderr.startswith("Error: run 2 failed: min_support")
    missing = crm_cmd(cli, "rules", "--run", "99")
    assert missing.exit_code == 2 and "no run 99" in missing.output


def test_runs_command(ss_crm, cli):
    load_sku_baskets(ss_crm, SMALL)
    crm_cmd(cli, "mine", "--min-support", "0.4", "--no-alerts")
    crm_cmd(cli, "mine", "--min-support", "0.1", "--no-alerts")
    crm_cmd(cli, "mine", "--min-support", "0.6", "--since", "2024-01-01", "--no-alerts")
    rows = json.loads(crm_cmd(cli, "runs", "--format", "json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [(3, "ok"), (2, "failed"), (1, "ok")]
    assert rows[0]["params"]["since"] == "2024-01-01" and rows[1]["error"]
    assert [r["id"] for r in json.loads(crm_cmd(cli, "runs", "--limit", "1",
                                                "--format", "json").stdout)] == [3]  # fmt: skip
    table = crm_cmd(cli, "runs")
    assert table.exit_code == 0 and "failed" in table.output and "2024-01-01" in table.output


def test_mute_and_unmute_commands(ss_crm, cli):
    load_sku_baskets(ss_crm, SMALL)
    key = mine_json(cli, "--min-support", "0.4", "--no-alerts")["rules"][0]["key"]
    result = crm_cmd(cli, "mute", key, "--reason", "Khách sỉ", "--by", "mai@example.com")
    assert result.exit_code == 0 and result.output.strip() == f"rule {key} muted"
    with ss_crm.db.session() as session:
        muted = session.get(MutedRule, key)
        assert (muted.reason, muted.muted_by) == ("Khách sỉ", ss_crm.people["mai@example.com"])

    assert crm_cmd(cli, "mute", key).exit_code == 2  # --reason is required
    unknown = crm_cmd(cli, "mute", "999>998", "--reason", "x")
    assert unknown.exit_code == 2 and "no rule '999>998'" in unknown.output
    nobody = crm_cmd(cli, "mute", key, "--reason", "x", "--by", "ai@example.com")
    assert nobody.exit_code == 2 and "--by" in nobody.output

    assert crm_cmd(cli, "unmute", key).output.strip() == f"rule {key} unmuted"
    assert crm_cmd(cli, "unmute", key).output.strip() == f"rule {key} was not muted"
    with ss_crm.db.session() as session:
        assert session.scalar(select(func.count()).select_from(MutedRule)) == 0


def test_mine_raises_alerts_unless_told_not_to(ss_crm, cli):
    from plugins.smart_sales.models import Alert

    one_customer_per_basket(ss_crm, ss_crm.people["an@example.com"])
    quiet = mine_json(cli, "--min-support", "0.4", "--min-lift", "0", "--no-alerts")
    assert quiet["run"]["alerts_raised"] == 0 and count(ss_crm, Alert) == 0
    loud = crm_cmd(cli, "mine", "--min-support", "0.4", "--min-lift", "0")
    assert loud.exit_code == 0, loud.output
    raised = count(ss_crm, Alert)
    assert raised > 0 and loud.output.strip().endswith(f"; {raised} alerts raised")
