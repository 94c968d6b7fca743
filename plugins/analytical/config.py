"""Settings of the analytical module: ``[analytical]`` in ``crm.toml`` or
``CRM_ANALYTICAL_<NAME>``. ``crm settings --module analytical`` lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.settings import ModuleSetting, non_negative_int, percent, positive_int

if TYPE_CHECKING:
    from core.runtime import Crm

DECLARATIONS = (
    # cost to serve, in minor units of the default currency
    ModuleSetting("cost_per_ticket", 50_000, non_negative_int, "cost to serve one ticket"),
    ModuleSetting(
        "cost_per_interaction", 5_000, non_negative_int, "cost to serve one logged interaction"
    ),
    ModuleSetting("cost_per_order", 0, non_negative_int, "handling cost of one order"),
    # value tiers: A holds the top share of margin, B the next, C the rest
    ModuleSetting("tier_a_percent", 80, percent, "share of total margin held by tier A"),
    ModuleSetting("tier_b_percent", 95, percent, "share held by tiers A and B together"),
    # the four customer classes
    ModuleSetting("new_days", 90, positive_int, "new: first order within this many days"),
    ModuleSetting("loyal_min_orders", 3, positive_int, "loyal: at least this many orders..."),
    ModuleSetting("loyal_days", 365, positive_int, "...the last within this many days"),
    ModuleSetting(
        "potential_days", 90, positive_int, "potential: engaged (inbound contact) this recently"
    ),
    # lifetime value
    ModuleSetting("clv_unit", "week", lambda n, v: _choice(n, v, ("day", "week")), "day|week"),
    ModuleSetting("clv_horizon", 52, positive_int, "CLV horizon, in clv_unit"),
    ModuleSetting(
        "clv_discount_percent", 10, percent, "yearly discount rate of future margin, percent"
    ),
    ModuleSetting(
        "clv_holdout_days", 90, positive_int, "days after calibration for the holdout check"
    ),
    ModuleSetting(
        "clv_min_repeat_customers", 100, positive_int, "checklist: repeat customers CLV needs"
    ),
    ModuleSetting("clv_min_history_days", 90, positive_int, "checklist: order history CLV needs"),
    # churn
    ModuleSetting(
        "churn_overdue_percent",
        200,
        positive_int,
        "overdue when days since last order exceed this percent of the usual gap",
    ),
    ModuleSetting("churn_high_alive_percent", 30, percent, "high risk below this P(alive)"),
    ModuleSetting("churn_medium_alive_percent", 60, percent, "medium risk below this P(alive)"),
    # campaigns
    ModuleSetting("control_percent", 10, percent, "default control group share"),
    ModuleSetting("response_days", 30, positive_int, "default response window of a campaign"),
    # freshness
    ModuleSetting(
        "snapshot_max_age_hours", 36, positive_int, "checklist: snapshots older than this warn"
    ),
)


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    from core.errors import SettingsError

    text = str(value).strip().lower()
    if text not in options:
        raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {value!r}")
    return text


def settings(crm: Crm) -> dict[str, Any]:
    """The module's settings, validated (raises ``SettingsError`` naming a bad one)."""
    return crm.module_settings("analytical")
