"""Placeholder until its helper writes it."""


def on_record_event(crm, event):
    """Nothing yet."""


def on_customer_updated(crm, customer, changes):
    """Nothing yet."""
