"""Exceptions the core raises for problems a person can fix.

Each carries a message that names what is wrong and where; the CLI prints it and exits non-zero.
"""


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
