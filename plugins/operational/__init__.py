"""Operational CRM: everything staff who face customers do (sales, service, marketing).

Its models, migrations, routes, views and checklist items arrive with its own issue; until then
the module declares itself so that it can be enabled, disabled and depended upon.
"""

from core import Manifest, hookimpl

MANIFEST = Manifest(
    name="operational",
    version="0.1.0",
    summary="Interactions, pipeline, sales force automation, tickets, orders",
    category="operational",
    depends=(),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the operational module."""
    return MANIFEST
