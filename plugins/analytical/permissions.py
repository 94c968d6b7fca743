"""Permissions of the analytical module: ``analytical.<model>:<action>``."""

from core.permissions import Permission

_ANALYSTS = ("manager", "analyst", "marketing")
_MARKETING = ("manager", "marketing")


def declarations() -> list[Permission]:
    """Every permission of the module, with the roles that hold it by default."""
    return [
        Permission("analytical.insight", "read", "See analytics pages and dashboards", _ANALYSTS),
        Permission(
            "analytical.insight", "export", "Download analytics as CSV", ("manager", "analyst")
        ),
        Permission("analytical.segment", "read", "See saved segments", _ANALYSTS),
        Permission("analytical.segment", "create", "Save segments", _MARKETING),
        Permission("analytical.segment", "update", "Change and delete segments", _MARKETING),
        Permission("analytical.campaign", "read", "See campaigns and their results", _ANALYSTS),
        Permission("analytical.campaign", "create", "Create and freeze campaigns", _MARKETING),
        Permission("analytical.campaign", "send", "Hand a campaign to a mailing", _MARKETING),
    ]
