"""Placeholder: written in the next step of issue 8."""


def resources():
    """Nothing yet."""
    return []


def menu():
    """Nothing yet."""
    return []


def slots():
    """Nothing yet."""
    return []


def widgets():
    """Nothing yet."""
    return []
