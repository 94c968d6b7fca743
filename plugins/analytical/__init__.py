"""Analytical CRM: customer value and behaviour, forecasts and targeted campaigns.

Its models, migrations, routes, views and checklist items arrive with its own issue; until then
the module declares itself so that it can be enabled, disabled and depended upon.
"""

from core import Manifest, hookimpl

MANIFEST = Manifest(
    name="analytical",
    version="0.1.0",
    summary="RFM, lifetime value, profitability, cohorts, forecasts, campaigns",
    category="analytical",
    depends=("operational",),
    core=">=0.1,<1",
)


@hookimpl
def manifest():
    """Describe the analytical module."""
    return MANIFEST
