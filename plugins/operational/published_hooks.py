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


@hookspec
def mailing_segment(crm, session, name):
    """Customer ids of the segment ``name``, for a mailing whose audience is ``{"segment": name}``.

    Called inside the scheduling transaction, for enabled modules that implement it (the
    analytical module answers with its RFM and value segments). Return an iterable of customer
    ids, or ``None`` when this module does not know the segment. Optional: mark implementations
    ``@hookimpl(optionalhook=True)`` if they may run without this module.
    """
