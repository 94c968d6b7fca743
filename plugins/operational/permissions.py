"""Permissions of the operational module: ``operational.<model>:<action>``."""

from core.permissions import Permission

_SELLERS = ("manager", "sales")
_SERVICE = ("manager", "service")
_MARKETING = ("manager", "marketing")
_READERS = ("manager", "sales", "service", "marketing", "analyst")


def _crud(model: str, label: str, writers: tuple[str, ...], readers: tuple[str, ...] = _READERS):
    return [
        Permission(model, "read", f"See {label}", readers),
        Permission(model, "create", f"Create {label}", writers),
        Permission(model, "update", f"Change {label}", writers),
        Permission(model, "export", f"Export {label}", ("manager", "analyst")),
    ]


def declarations() -> list[Permission]:
    """Every permission of the module, with the roles that hold it by default."""
    return [
        *_crud("operational.product", "products", ("manager",)),
        *_crud("operational.order", "orders", _SELLERS),
        Permission("operational.order", "import", "Import orders and products", ("manager",)),
        *_crud("operational.interaction", "interactions", (*_SELLERS, "service", "marketing")),
        *_crud("operational.opportunity", "opportunities", _SELLERS),
        Permission(
            "operational.pipeline", "manage", "Configure stages and lost reasons", ("manager",)
        ),
        *_crud("operational.activity", "activities", (*_SELLERS, "service")),
        *_crud("operational.mailing", "mailings", _MARKETING),
        Permission("operational.mailing", "send", "Send mailings", _MARKETING),
        Permission(
            "operational.reply", "create", "Post inbound replies (the mail gateway's token)"
        ),
        *_crud("operational.ticket", "tickets", _SERVICE),
        Permission("operational.sla", "manage", "Configure SLA policies", ("manager",)),
        Permission("operational.report", "read", "See operational reports", ("manager", "analyst")),
    ]
