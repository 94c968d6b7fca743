"""Loading the demo data set: staff, customers from :mod:`core.demo`, then modules' own."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from core import csvimport
from core.customers import importer
from core.demo import CSV_COLUMNS, customer_rows

if TYPE_CHECKING:
    from core.runtime import Crm

DEMO_STAFF = (
    ("manager@demo.example", "Lê Thị Mai", ("manager",)),
    ("sales1@demo.example", "Phạm Quốc Bảo", ("sales",)),
    ("sales2@demo.example", "Nguyễn Thu Hà", ("sales",)),
    ("service@demo.example", "Hoàng Minh Tuấn", ("service",)),
    ("marketing@demo.example", "زهرا احمدی", ("marketing",)),
)
DEMO_PASSWORD = "demo-password-2026"
#: The sales team of the demo staff (sales and the manager see the team's customers).
DEMO_TEAM = ("hanoi", "Hà Nội")


def _staff(crm: Crm) -> list[str]:
    from core import users
    from core.models import Team, User

    with crm.db.write() as session:
        for email, name, roles in DEMO_STAFF:
            if session.scalar(select(User.id).where(User.email == email)) is None:
                users.create_user(
                    session,
                    email,
                    name,
                    DEMO_PASSWORD,
                    roles,
                    language="fa" if name[0] >= "\u0600" else "vi",
                )
        team = session.scalar(select(Team).where(Team.name == DEMO_TEAM[0]))
        if team is None:
            team = users.add_team(session, *DEMO_TEAM)
        for email, _, roles in DEMO_STAFF:
            if "sales" in roles or "manager" in roles:
                users.set_team(session, users.get_user(session, email), team)
    return [email for email, _, roles in DEMO_STAFF if "sales" in roles or "manager" in roles]


def load(crm: Crm, count: int, seed: int) -> csvimport.Summary:
    """Create demo staff and ``count`` customers; loading again changes nothing."""
    owners = _staff(crm)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*CSV_COLUMNS, "owner"])
            for number, row in enumerate(customer_rows(count, seed)):
                writer.writerow([*(row[c] for c in CSV_COLUMNS), owners[number % len(owners)]])
        with csvimport.open_csv(path) as handle:
            return importer.import_rows(crm, handle, source="crm demo")


def load_modules(crm: Crm, seed: int) -> list[tuple[str, str]]:
    """Let each enabled module add its demo data; returns what each said it loaded."""
    return [
        (result.plugin, str(result.value) if result.error is None else f"failed: {result.error}")
        for result in crm.collect("demo_data", crm=crm, seed=seed)
        if result.value is not None or result.error is not None
    ]
