"""Reactions to events: the core's new customers, the operational module's orders."""

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from core.runtime import Crm
from crm_loyalty import NAME, notes, points

log = logging.getLogger(__name__)

WELCOME = "Welcome"


def on_customer_created(crm: Crm, customer: dict[str, Any]) -> None:
    """Give a new customer a first note, owned by the customer's owner.

    Runs after the creating transaction committed, in a transaction of its own; an error here is
    logged with the module's name and does not undo the customer.
    """
    try:
        with crm.db.write() as session:
            notes.add(
                session,
                customer["id"],
                WELCOME,
                f"{customer['display_name']} became a customer.",
                owner_id=customer.get("owner_id"),
            )
    except IntegrityError:
        # the customer was deleted meanwhile: there is nobody to welcome
        log.info("customer %s: no welcome note (deleted meanwhile)", customer["id"])


def on_order_placed(crm: Crm, order: dict[str, Any]) -> None:
    """Credit an order's points to its customer.

    Runs after the order's transaction committed, in a transaction of its own. The unique
    ``order_id`` makes a second delivery of the same order harmless.
    """
    settings = crm.module_settings(NAME)
    try:
        with crm.db.write() as session:
            credited = points.earn(session, order, settings)
    except IntegrityError:
        log.info("order %s: points already credited, or its customer is gone", order["id"])
        return
    if credited:
        log.info("order %s: %s points to customer %s", order["ref"], credited, order["customer_id"])
