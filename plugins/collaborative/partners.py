"""Placeholder until its helper writes it."""


def record_types():
    """Nothing yet."""
    return []
