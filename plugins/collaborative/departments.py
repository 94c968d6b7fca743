"""Placeholder until its helper writes it."""


def on_customer_created(crm, customer):
    """Nothing yet."""
