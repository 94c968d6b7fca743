"""Hooks the operational module publishes for the modules that depend on it."""

from core import hookspec


@hookspec
def order_placed(crm, order):
    """An order was placed; called after its transaction committed.

    ``order`` is a dict: ``id``, ``ref``, ``customer_id``, ``placed_at``, ``currency``,
    ``total_minor``, ``channel``, ``status`` and ``lines`` (``product_id``, ``sku``,
    ``quantity``, ``unit_price_minor``, ``discount_minor``, ``amount_minor``). Imports call it
    once per imported order only when ``crm orders import --notify`` is given (a million hook
    calls would dominate an import). Return nothing.
    """
