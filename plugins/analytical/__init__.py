"""Analytical CRM: customer value and behaviour, forecasts and targeted campaigns.

It reads the operational module's orders (``depends: operational``). Heavy computations run in
SQL where the database can do them and are stored as snapshots with their as-of date. So far:
RFM segmentation (``crm analytics rfm``) and customer lifetime value.
"""

from pathlib import Path

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


@hookimpl
def migrations():
    """The module's Alembic revisions."""
    return Path(__file__).parent / "migrations"


# Named so the models.py submodule cannot replace it (see docs/plugins.md).
@hookimpl(specname="models")
def own_models():
    """Snapshot tables."""
    from plugins.analytical.models import ALL_MODELS

    return list(ALL_MODELS)


@hookimpl
def register_commands(cli):
    """``crm analytics``."""
    from plugins.analytical.commands import commands

    for command in commands():
        cli.add_command(command)


@hookimpl
def customer_slots(crm):
    """The customer's latest RFM scores and segment."""
    from plugins.analytical.views import slots

    return slots()


@hookimpl
def template_dirs():
    """Templates, found as ``analytical/<name>``."""
    return [Path(__file__).parent / "templates"]
