"""Placeholder until its helper writes it."""


def items():
    """Nothing yet."""
    return []
