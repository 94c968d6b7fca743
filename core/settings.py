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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import SettingsError

DEFAULT_SECRET_KEY = "insecure-default-secret-change-me"
DEFAULT_DATABASE_FILE = "crm.db"
_URL_RE = re.compile(r"^(sqlite|sqlite\+pysqlite|postgresql|postgresql\+psycopg)://", re.I)


def _bool(name: str, value: object) -> bool:
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


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {value!r}") from None
    if number <= 0:
        raise SettingsError(f"{name}: must be greater than 0, got {number}")
    return number


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
    config_file: str | None = None

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
    "strict_plugins": _bool,
    "silenced_checks": _names,
    "backup_dir": lambda name, value: str(value),
    "backup_max_age_hours": _positive_int,
    "public_api_docs": _bool,
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
        unknown = set(file_values) - set(_PARSERS)
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
    return Settings(**{k: v for k, v in values.items() if k in known})
