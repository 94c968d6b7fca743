"""What the module adds to the generated UI: resources, menu entries, customer slots and
dashboard widgets, gathered from the modules of each feature."""

from __future__ import annotations

from typing import Any


def resources() -> list[Any]:
    """Alerts, rules and mining runs."""
    from plugins.smart_sales import alert_views, rule_views

    return [*alert_views.resources(), *rule_views.resources()]


def menu() -> list[Any]:
    """Alerts (with the open count), rules, performance."""
    from plugins.smart_sales import alert_views, performance_views, rule_views

    return [*alert_views.menu(), *rule_views.menu(), *performance_views.menu()]


def slots() -> list[Any]:
    """The customer's next best offers."""
    from plugins.smart_sales import alert_views

    return alert_views.slots()


def widgets() -> list[Any]:
    """Open alerts, revenue credited to alerts."""
    from plugins.smart_sales import alert_views, performance_views

    return [*alert_views.widgets(), *performance_views.widgets()]
