"""Earning and reading loyalty points: one place for the hook, the API, the panel and the CLI."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.settings import ModuleSetting, SettingsError, positive_int
from crm_loyalty.models import PointsEntry


def _currency(label: str, raw: object) -> str:
    text = str(raw).strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise SettingsError(f"{label}: {raw!r} is not a three-letter currency code such as VND")
    return text


def declared_settings() -> list[ModuleSetting]:
    """What an admin may set under ``[loyalty]`` in crm.toml or as ``CRM_LOYALTY_*``."""
    return [
        ModuleSetting("currency", "VND", _currency, "currency of the orders that earn points"),
        ModuleSetting(
            "minor_per_point", 10_000, positive_int, "order amount (minor units) per point"
        ),
    ]


def points_for(order: dict[str, Any], settings: dict[str, Any]) -> int:
    """Points an order earns: whole multiples of ``minor_per_point`` in the chosen currency."""
    if order["currency"] != settings["currency"] or order["total_minor"] <= 0:
        return 0
    return order["total_minor"] // settings["minor_per_point"]


def earn(session: Session, order: dict[str, Any], settings: dict[str, Any]) -> int:
    """Credit ``order``'s points to its customer, once per order; return the points credited."""
    points = points_for(order, settings)
    already = session.scalar(select(PointsEntry.id).where(PointsEntry.order_id == order["id"]))
    if not points or already is not None:
        return 0
    session.add(
        PointsEntry(
            customer_id=order["customer_id"],
            order_id=order["id"],
            order_ref=order["ref"],
            points=points,
        )
    )
    session.flush()
    return points


def balance(session: Session, customer_id: int) -> int:
    """A customer's points."""
    total = select(func.coalesce(func.sum(PointsEntry.points), 0))
    return session.scalar(total.where(PointsEntry.customer_id == customer_id))


def history(session: Session, customer_id: int, limit: int = 5) -> list[PointsEntry]:
    """A customer's latest earnings, newest first."""
    query = select(PointsEntry).where(PointsEntry.customer_id == customer_id)
    return list(session.scalars(query.order_by(PointsEntry.id.desc()).limit(limit)))
