"""The module's items of the pre-deployment checklist (``crm check``)."""

from core.checks import CheckItem, settings_valid
from core.runtime import Crm
from crm_loyalty import NAME, notes


def items() -> list[CheckItem]:
    """One automatic check; an item without a check function is an attestation."""
    return [
        CheckItem(
            f"{NAME}.W001",
            "warning",
            "data",
            "At least one note exists",
            "write one on a customer's page, or create a customer (it gets a welcome note)",
            _has_notes,
        ),
        CheckItem(
            f"{NAME}.E002",
            "error",
            "technical",
            "Loyalty settings are valid",
            "fix [loyalty] in crm.toml or the CRM_LOYALTY_* variables",
            settings_valid(NAME),
        ),
    ]


def _has_notes(crm: Crm) -> str | None:
    with crm.db.session() as session:
        counted = notes.stats(session)
    return None if counted["notes"] else "there are no notes yet"
