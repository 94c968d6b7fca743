"""Placeholder: written in the next step of issue 8."""


def record_types():
    """Nothing yet."""
    return []


def timeline_sources():
    """Nothing yet."""
    return []
