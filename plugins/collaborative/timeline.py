"""Placeholder until its helper writes it."""


def sources():
    """Nothing yet."""
    return []
