"""Roles and permissions of the collaborative module: ``collaborative.<model>:<action>``."""

from core.permissions import Permission, Role

_STAFF = ("manager", "sales", "service", "marketing", "analyst")
_WRITERS = ("manager", "sales", "service", "marketing")
#: Every role that signs in, partner contacts included, has an inbox.
_EVERYONE = (*_STAFF, "partner")

PARTNER = Role(
    "partner",
    "Partner contact",
    "Someone at a partner company: sees only the customers shared with them, and their notes.",
    scope="shared",
)


def declarations() -> list[Permission]:
    """Every permission of the module, with the roles that hold it by default."""
    return [
        # The core grants customer:read to staff roles; partner contacts need it to open the
        # customers shared with them, and their ``shared`` scope limits them to those.
        Permission("customer", "read", "See customers", ("partner",)),
        Permission("collaborative.message", "read", "Read notes and comments", _EVERYONE),
        Permission("collaborative.message", "create", "Write notes and comments", _EVERYONE),
        Permission(
            "collaborative.message", "moderate", "Edit or delete anyone's messages", ("manager",)
        ),
        Permission("collaborative.notification", "read", "Own inbox and preferences", _EVERYONE),
        Permission("collaborative.feed", "read", "The activity feed", _STAFF),
        Permission("collaborative.team", "read", "See departments and their members", _STAFF),
        Permission(
            "collaborative.team", "manage", "Change departments, members, leads", ("manager",)
        ),
        Permission(
            "collaborative.account_team", "update", "Set customers' account teams", ("manager",)
        ),
        Permission("collaborative.handoff", "read", "See hand-offs", _STAFF),
        Permission("collaborative.handoff", "create", "Hand records to another team", _WRITERS),
        Permission(
            "collaborative.handoff", "update", "Accept or return hand-offs to one's team", _WRITERS
        ),
        Permission("collaborative.partner", "read", "See partners", _STAFF),
        Permission("collaborative.partner", "create", "Add partners", ("manager", "sales")),
        Permission(
            "collaborative.partner",
            "update",
            "Change partners and their links",
            ("manager", "sales"),
        ),
        Permission("collaborative.partner", "export", "Export partners", ("manager", "analyst")),
        Permission(
            "collaborative.share", "manage", "Share customers with partner contacts", ("manager",)
        ),
    ]
