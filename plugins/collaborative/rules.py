"""Placeholder until its helper writes it."""


def conditions(crm, user, model):
    """Nothing yet."""
    return []
