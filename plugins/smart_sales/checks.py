"""Placeholder: written in the next step of issue 8."""


def items():
    """Nothing yet."""
    return []
