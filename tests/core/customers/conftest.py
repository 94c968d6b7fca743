"""Fixtures for customer tests: an API client per role, and CSV files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import auth, users
from core.models import User
from core.web.app import create_app


def make_token(crm, email: str, roles: tuple[str, ...]) -> str:
    """An API token for a user with ``roles`` (created on first use)."""
    with crm.db.write() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = users.create_user(session, email, email.split("@")[0], "Password-123", roles)
        return auth.create_token(session, user, "test").secret


class Api:
    """A test client that sends one user's bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kw: call(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def client(crm):
    """A test client of the app."""
    crm.refresh()
    return TestClient(create_app(crm))


@pytest.fixture
def as_role(crm, client):
    """``as_role("sales")`` is an Api acting as a user with that role."""

    def build(role: str, email: str | None = None) -> Api:
        return Api(client, make_token(crm, email or f"{role}@example.com", (role,)))

    return build


@pytest.fixture
def write_csv(tmp_path):
    """Write rows (lists) to a CSV file and return its path."""

    def writer(
        rows: list[list[str]], name: str = "in.csv", encoding: str = "utf-8", bom: bool = False
    ) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding=("utf-8-sig" if bom else encoding), newline="") as fh:
            csv.writer(fh).writerows(rows)
        return path

    return writer
