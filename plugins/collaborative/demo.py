"""Placeholder until its helper writes it."""


def load(crm, seed):
    """Nothing yet."""
    return ""
