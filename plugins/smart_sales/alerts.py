"""Placeholder: written in the next step of issue 8."""


def merge_customer(session, survivor, merged):
    """Nothing yet."""
