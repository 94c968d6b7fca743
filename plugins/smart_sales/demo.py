"""Placeholder: written in the next step of issue 8."""


def load(crm, seed):
    """Nothing yet."""
    return ""
