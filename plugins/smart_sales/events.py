"""What the smart-selling module does when an order is placed.

``order_placed`` is called after the order's transaction committed. In one write transaction
of its own, the alerts the order converts are credited first, then the customer's alerts are
raised again: a customer who bought the suggested product converts the alert and is not
offered it anew. A failure here is logged and leaves the order as it is (it is already stored).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.runtime import Crm

log = logging.getLogger("crm.smart_sales.events")


def on_order_placed(crm: Crm, order: dict[str, Any]) -> None:
    """Credit the alerts ``order`` converts, then raise its customer's new alerts."""
    from plugins.smart_sales import alerts

    try:
        with crm.db.write() as session:
            alerts.credit_order(crm, session, order)
            alerts.generate(crm, session, customer_ids=[order["customer_id"]], source="order")
    except Exception:  # the order is committed: never let alerts break placing it
        log.exception("smart_sales: alerts for order %s failed", order.get("id"))
