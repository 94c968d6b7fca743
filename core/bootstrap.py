"""Creating a new installation: the core schema, built-in roles and the first administrator."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import audit, migrate, permissions, users
from core.models import User

if TYPE_CHECKING:
    from core.runtime import Crm


@dataclass
class InitResult:
    """What ``crm init`` did."""

    created: bool
    admin_email: str | None = None
    generated_password: str | None = None
    config_written: Path | None = None


def is_initialised(crm: Crm) -> bool:
    """Whether the core schema exists in the database."""
    with crm.db.engine.connect() as conn:
        return inspect(conn).has_table("core_module")


def write_secret_key(path: Path) -> Path | None:
    """Add a generated ``secret_key`` to the config file unless one is set there already."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if "secret_key" in existing:
        return None
    key = secrets.token_urlsafe(48)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(
            f'{"" if not existing or existing.endswith(chr(10)) else chr(10)}secret_key = "{key}"\n'
        )
    path.chmod(0o600)
    return path


def initialise(crm: Crm, admin_email: str, admin_password: str | None) -> InitResult:
    """Create the core schema and the first administrator; a no-op on a database with users."""
    email = users.normalise_email(admin_email)
    generated = None
    if admin_password is None:
        generated = admin_password = users.auth.generate_password()
    else:
        users.auth.check_password_strength(admin_password)
    with crm.db.writer.connect() as conn, conn.begin():
        migrate.upgrade(crm, conn, "core")
        with Session(bind=conn) as session:
            if session.scalar(select(User.id).limit(1)) is not None:
                return InitResult(created=False)
            permissions.sync(
                session,
                [
                    (
                        "core",
                        list(crm.registry.call_for("core", "roles")),
                        list(crm.registry.call_for("core", "permissions")),
                    ),
                ],
            )
            with audit.acting_as(audit.Actor(label="crm init")):
                user = users.create_user(
                    session,
                    email,
                    "Administrator",
                    admin_password,
                    roles=["admin"],
                    initial_password=True,
                )
            session.flush()
    crm.notify("user_created", user=user)
    return InitResult(created=True, admin_email=email, generated_password=generated)
