"""Collaborative CRM: departments share what each knows about a customer.

Its models, migrations, routes, views and checklist items arrive with its own issue; until then
the module declares itself so that it can be enabled, disabled and depended upon.
"""

from core import Manifest, hookimpl

MANIFEST = Manifest(
    name="collaborative",
    version="0.1.0",
    summary="Teams, shared notes, mentions, notifications, hand-offs, partners",
    category="collaborative",
    depends=(),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the collaborative module."""
    return MANIFEST
