"""Exceptions the core raises for problems a person can fix.

Each carries a message that names what is wrong and where; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base class for errors shown to users as a message rather than a traceback."""


class SettingsError(CrmError):
    """A setting has an invalid value; the message names the setting."""


class ManifestError(CrmError):
    """A plugin manifest is invalid, or module dependencies cannot be satisfied."""


class ModuleError(CrmError):
    """A module operation (enable, disable, uninstall, upgrade) was refused or failed."""


class SchemaMismatchError(CrmError):
    """The database schema does not match the code; the message says which command fixes it."""


class NotFoundError(CrmError):
    """A named thing (module, user, token, check) does not exist."""


class AuthError(CrmError):
    """Authentication failed (wrong password, unknown, revoked or expired token)."""


class Invalid(ValueError):
    """Input that fails validation; ``errors`` maps each bad field to what is wrong.

    A field may be dotted (``definition.tags``) to name a part of a nested value; the API turns
    it into a nested ``loc`` (see ``core.web.problems.invalid``).
    """

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Conflict(Exception):
    """The request clashes with the current state (a taken name, a record already sent on)."""


class StaleVersion(Exception):
    """The client changed a record from a version that is no longer current.

    ``record`` is the record (anything with ``id`` and ``version``) as the server holds it.
    """

    def __init__(self, record: Any) -> None:
        super().__init__(f"{type(record).__name__} {record.id} is at version {record.version}")
        self.record = record
