"""Permissions of the smart-selling module: ``smart_sales.<model>:<action>``."""

from core.permissions import Permission

_SELLERS = ("manager", "sales")


def declarations() -> list[Permission]:
    """Every permission of the module, with the roles that hold it by default."""
    return [
        Permission("smart_sales.alert", "read", "See alerts on visible customers", _SELLERS),
        Permission("smart_sales.alert", "update", "Mark alerts seen, acted or dismissed", _SELLERS),
        Permission("smart_sales.alert", "export", "Export visible alerts", ("manager",)),
        Permission(
            "smart_sales.alert", "team", "See the alert inboxes of one's team", ("manager",)
        ),
        Permission("smart_sales.rule", "read", "See mined rules and runs", (*_SELLERS, "analyst")),
        Permission("smart_sales.rule", "mine", "Mine rules and raise alerts", ("manager",)),
        Permission("smart_sales.rule", "review", "Mute and unmute rules", ("manager",)),
        Permission(
            "smart_sales.performance",
            "read",
            "Alert and sales performance (sellers: their own, by record rules)",
            (*_SELLERS, "analyst"),
        ),
    ]
