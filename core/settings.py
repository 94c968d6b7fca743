"""Settings from environment variables and an optional ``crm.toml``.

Every setting has an environment variable ``CRM_<NAME>`` and a key ``<name>`` in ``crm.toml``
(found at ``$CRM_CONFIG`` or ``./crm.toml``). The environment wins over the file. Invalid values
raise ``SettingsError`` naming the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import SettingsError

DEFAULT_SECRET_KEY = "insecure-default-secret-change-me"
DEFAULT_DATABASE_FILE = "crm.db"
_URL_RE = re.compile(r"^(sqlite|sqlite\+pysqlite|postgresql|postgresql\+psycopg)://", re.I)


def boolean(name: str, value: object) -> bool:
    """``value`` as a boolean (true/false, yes/no, on/off, 1/0); ``name`` names it in errors."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def _names(name: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def whole_number(name: str, value: object, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as an integer between ``minimum`` and ``maximum``; ``name`` names it in errors."""
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected a whole number, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{name}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise SettingsError(f"{name}: must be at most {maximum}, got {number}")
    return number


def positive_int(name: str, value: object) -> int:
    """``value`` as an integer greater than 0."""
    return whole_number(name, value, minimum=1)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an integer of 0 or more (amounts in minor units, counts)."""
    return whole_number(name, value, minimum=0)


def percent(name: str, value: object) -> int:
    """``value`` as a whole percentage from 0 to 100."""
    return whole_number(name, value, minimum=0, maximum=100)


@dataclass(frozen=True)
class Settings:
    """The product's settings, validated."""

    database_url: str
    secret_key: str = DEFAULT_SECRET_KEY
    default_region: str = "VN"
    default_currency: str = "VND"
    timezone: str = "Asia/Ho_Chi_Minh"
    smtp_url: str | None = None
    mail_from: str = "crm@localhost"
    public_url: str = "http://127.0.0.1:8000"
    load_plugins: tuple[str, ...] | None = None
    strict_plugins: bool = False
    silenced_checks: tuple[str, ...] = ()
    backup_dir: str = "backups"
    backup_max_age_hours: int = 24
    public_api_docs: bool = True
    #: Outbound webhooks may target private, loopback and shared addresses (on-premise installs).
    webhooks_allow_private: bool = False
    #: ``crm serve`` delivers webhooks in a background thread (else only ``crm webhooks deliver``).
    webhooks_in_server: bool = True
    #: Attempts per webhook delivery before it is ``failed`` (redeliverable by hand).
    webhooks_max_attempts: int = 10
    #: Seconds a webhook target has to answer.
    webhooks_timeout_seconds: int = 10
    #: Delivered webhook deliveries older than this many days are pruned (0: kept for ever).
    webhooks_keep_days: int = 30
    config_file: str | None = None
    #: ``[module]`` tables of ``crm.toml`` and ``CRM_*`` variables the core does not know:
    #: module settings, validated by :func:`module_settings` against the modules' declarations.
    module_sources: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite."""
        return self.database_url.lower().startswith("sqlite")

    @property
    def secret_key_is_default(self) -> bool:
        """Whether the secret key is still the insecure built-in default."""
        return self.secret_key == DEFAULT_SECRET_KEY


def _validate_url(name: str, value: object) -> str:
    text = str(value).strip()
    if not _URL_RE.match(text):
        raise SettingsError(
            f"{name}: {text!r} is not a supported database URL"
            " (use sqlite:///path/to/file.db or postgresql+psycopg://user:pass@host/db)"
        )
    if text.lower().startswith("postgresql://"):
        text = "postgresql+psycopg://" + text[len("postgresql://") :]
    return text


def _validate_secret(name: str, value: object) -> str:
    text = str(value)
    if text != DEFAULT_SECRET_KEY and len(text) < 32:
        raise SettingsError(f"{name}: must be at least 32 characters long")
    return text


def _validate_region(name: str, value: object) -> str:
    text = str(value).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", text):
        raise SettingsError(f"{name}: {value!r} is not a two-letter region code such as VN or IR")
    return text


def _validate_currency(name: str, value: object) -> str:
    text = str(value).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise SettingsError(f"{name}: {value!r} is not a three-letter ISO 4217 currency code")
    return text


def _validate_timezone(name: str, value: object) -> str:
    import zoneinfo

    text = str(value).strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name}: {value!r} is not an IANA time zone such as Asia/Ho_Chi_Minh or Asia/Tehran"
        ) from None
    return text


def _validate_smtp_url(name: str, value: object) -> str | None:
    from urllib.parse import urlsplit

    text = str(value).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise SettingsError(
            f"{name}: {value!r} is not an SMTP URL such as smtp+starttls://user:pass@host:587"
        )
    return text


def _validate_public_url(name: str, value: object) -> str:
    from urllib.parse import urlsplit

    text = str(value).strip().rstrip("/")
    if urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).hostname:
        raise SettingsError(
            f"{name}: {value!r} is not an http(s) URL such as https://crm.example.vn"
        )
    return text


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "database_url": _validate_url,
    "secret_key": _validate_secret,
    "default_region": _validate_region,
    "default_currency": _validate_currency,
    "timezone": _validate_timezone,
    "smtp_url": _validate_smtp_url,
    "mail_from": lambda name, value: str(value).strip(),
    "public_url": _validate_public_url,
    "load_plugins": _names,
    "strict_plugins": boolean,
    "silenced_checks": _names,
    "backup_dir": lambda name, value: str(value),
    "backup_max_age_hours": positive_int,
    "public_api_docs": boolean,
    "webhooks_allow_private": boolean,
    "webhooks_in_server": boolean,
    "webhooks_max_attempts": lambda name, value: whole_number(name, value, 1, 50),
    "webhooks_timeout_seconds": lambda name, value: whole_number(name, value, 1, 60),
    "webhooks_keep_days": non_negative_int,
}


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) and ``crm.toml``."""
    env = os.environ if environ is None else environ
    base = cwd or Path.cwd()
    config_path = Path(env["CRM_CONFIG"]) if env.get("CRM_CONFIG") else base / "crm.toml"
    file_values: dict[str, Any] = {}
    if config_path.exists():
        try:
            file_values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{config_path}: not valid TOML: {exc}") from None
        unknown = {
            k for k, v in file_values.items() if k not in _PARSERS and not isinstance(v, dict)
        }
        if unknown:
            raise SettingsError(f"{config_path}: unknown setting(s) {', '.join(sorted(unknown))}")
    elif env.get("CRM_CONFIG"):
        raise SettingsError(f"CRM_CONFIG: file {config_path} does not exist")

    values: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        env_name = f"CRM_{name.upper()}"
        if env_name in env:
            values[name] = parse(env_name, env[env_name])
        elif name in file_values:
            values[name] = parse(f"{config_path.name}: {name}", file_values[name])
    if "database_url" not in values:
        values["database_url"] = f"sqlite:///{base / DEFAULT_DATABASE_FILE}"
    values["config_file"] = str(config_path) if config_path.exists() else None
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in values.items() if k in known})
    sections = {k: v for k, v in file_values.items() if isinstance(v, dict)}
    extra_env = {
        k: v for k, v in env.items() if k.startswith("CRM_") and k[4:].lower() not in _PARSERS
    }
    object.__setattr__(
        settings, "module_sources", {"file": config_path.name, "tables": sections, "env": extra_env}
    )
    return settings


@dataclass(frozen=True)
class ModuleSetting:
    """A setting a module declares through the ``module_settings`` hook.

    It is read from the environment variable ``CRM_<MODULE>_<NAME>`` or from the key ``name``
    of the ``[module]`` table of ``crm.toml``, and checked by ``parse(label, raw)`` (one of
    :func:`boolean`, :func:`whole_number`, :func:`positive_int`, :func:`non_negative_int`,
    :func:`percent`, or your own raising :class:`SettingsError`).
    """

    name: str
    default: Any
    parse: Callable[[str, Any], Any]
    help: str


def module_settings(
    settings: Settings, module: str, declared: list[ModuleSetting]
) -> dict[str, Any]:
    """The values of ``module``'s ``declared`` settings: environment, then file, then default.

    Raises :class:`SettingsError` naming the setting when a value is invalid, or when the
    module's ``crm.toml`` table holds a key the module does not declare.
    """
    sources = settings.module_sources or {}
    table = dict((sources.get("tables") or {}).get(module, {}))
    env = sources.get("env") or {}
    file_name = sources.get("file", "crm.toml")
    names = {item.name for item in declared}
    unknown = sorted(set(table) - names)
    if unknown:
        raise SettingsError(
            f"{file_name}: [{module}] has unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(names)) or 'none'}"
        )
    values: dict[str, Any] = {}
    for item in declared:
        env_name = f"CRM_{module.upper()}_{item.name.upper()}"
        if env_name in env:
            values[item.name] = item.parse(env_name, env[env_name])
        elif item.name in table:
            values[item.name] = item.parse(f"{file_name}: [{module}] {item.name}", table[item.name])
        else:
            values[item.name] = item.default
    return values
