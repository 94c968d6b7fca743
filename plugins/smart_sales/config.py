"""Settings of the smart-selling module: ``[smart_sales]`` in ``crm.toml`` or
``CRM_SMART_SALES_<NAME>``. ``crm settings --module smart_sales`` lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import SettingsError
from core.settings import ModuleSetting, percent, positive_int, whole_number

if TYPE_CHECKING:
    from core.runtime import Crm


def _ratio(name: str, value: object) -> float:
    """A share between 0 and 1 given as ``0.01`` (or ``1%``)."""
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SettingsError(f"{name}: expected a number between 0 and 1, got {value!r}") from None
    if not 0 < number <= 1:
        raise SettingsError(f"{name}: expected a number between 0 and 1, got {value!r}")
    return number


def _lift(name: str, value: object) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number such as 1.2, got {value!r}") from None
    if number < 0:
        raise SettingsError(f"{name}: expected a number of at least 0, got {value!r}")
    return number


def _tier(name: str, value: object) -> str:
    text = str(value).strip().upper()
    if text not in ("A", "B", "C"):
        raise SettingsError(f"{name}: expected A, B or C, got {value!r}")
    return text


DECLARATIONS = (
    # mining
    ModuleSetting("min_support", 0.01, _ratio, "rules: share of baskets holding all products"),
    ModuleSetting("min_confidence", 0.2, _ratio, "rules: share of X's baskets that also hold Y"),
    ModuleSetting("min_lift", 1.2, _lift, "rules: how many times the usual rate Y must reach"),
    ModuleSetting(
        "max_length", 3, lambda n, v: whole_number(n, v, 2, 10), "most products in one rule"
    ),
    ModuleSetting(
        "max_basket_size",
        50,
        lambda n, v: whole_number(n, v, 2, 10_000),
        "orders with more distinct products are left out of mining (they explode memory)",
    ),
    ModuleSetting(
        "keep_rule_runs",
        10,
        positive_int,
        "the rules of this many latest successful runs are kept (older runs keep their summary)",
    ),
    # alerts
    ModuleSetting(
        "default_margin_percent",
        30,
        percent,
        "margin assumed for products without a cost, in expected values",
    ),
    ModuleSetting("alert_days", 30, positive_int, "an open alert expires after this many days"),
    ModuleSetting(
        "conversion_days",
        30,
        positive_int,
        "an order with the suggested product within this many days converts the alert",
    ),
    ModuleSetting(
        "snooze_days",
        90,
        positive_int,
        "a dismissed alert is not raised again for the same customer and product this long",
    ),
    ModuleSetting(
        "upsell_rate_percent",
        10,
        percent,
        "up-sell probability when history has too few upgrades to measure it",
    ),
    ModuleSetting("churn_alive_percent", 30, percent, "churn alert when P(alive) falls under this"),
    ModuleSetting(
        "churn_overdue_percent",
        200,
        positive_int,
        "churn alert when days since the last order exceed this percent of the usual gap",
    ),
    ModuleSetting(
        "churn_min_tier", "B", _tier, "churn alerts only for customers of this tier or better"
    ),
    ModuleSetting("offers_shown", 3, positive_int, "next best offers on the customer page"),
    # checklist
    ModuleSetting(
        "min_multi_item_orders",
        200,
        positive_int,
        "checklist: orders with two or more products needed to mine",
    ),
    ModuleSetting(
        "mining_max_age_hours", 36, positive_int, "checklist: the last mining run is this recent"
    ),
)


def settings(crm: Crm) -> dict[str, Any]:
    """The module's settings, validated (raises ``SettingsError`` naming a bad one)."""
    return crm.module_settings("smart_sales")
