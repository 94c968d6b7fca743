"""The module's REST API: one router per feature, mounted under ``/api/operational/``."""

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the module."""
    return []
