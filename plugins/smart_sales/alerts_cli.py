"""Placeholder: written in the next step of issue 8."""


def register(group):
    """Nothing yet."""
