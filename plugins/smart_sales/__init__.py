"""Smart selling: alerts for salespeople mined from order history.

Its models, migrations, routes, views and checklist items arrive with its own issue; until then
the module declares itself so that it can be enabled, disabled and depended upon.
"""

from core import Manifest, hookimpl

MANIFEST = Manifest(
    name="smart_sales",
    version="0.1.0",
    summary="Cross-sell, up-sell and churn alerts, next best offer, performance",
    category="sales",
    depends=("operational", "analytical"),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the smart_sales module."""
    return MANIFEST
