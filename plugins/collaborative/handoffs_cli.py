"""Placeholder until its helper writes it."""


def register(group):
    """Nothing yet."""
