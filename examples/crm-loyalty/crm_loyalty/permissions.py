"""Who may do what with notes (``<module>.note:<action>``), held by default by these roles.

The ``admin`` role holds every permission. A user's record rules still apply: people see the
notes of the customers they may see.
"""

from core.permissions import Permission
from crm_loyalty import NAME

NOTE = f"{NAME}.note"
READ = f"{NOTE}:read"
CREATE = f"{NOTE}:create"
UPDATE = f"{NOTE}:update"
EXPORT = f"{NOTE}:export"
POINTS = f"{NAME}.points"
POINTS_READ = f"{POINTS}:read"

_STAFF = ("manager", "sales", "service")


def declarations() -> list[Permission]:
    """Every permission of the module, with the roles holding it by default."""
    return [
        Permission(NOTE, "read", "See notes on customers", _STAFF),
        Permission(NOTE, "create", "Write notes on customers", _STAFF),
        Permission(NOTE, "update", "Change notes on customers", _STAFF),
        Permission(NOTE, "export", "Export notes on customers", ("manager",)),
        Permission(POINTS, "read", "See customers' loyalty points", _STAFF),
    ]
