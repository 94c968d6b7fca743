"""The module's REST API: one router per feature, mounted under ``/api/operational/``."""

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the module."""
    from plugins.operational import mailings_api, orders_api, pipeline_api, tickets_api

    return [orders_api.router, pipeline_api.router, mailings_api.router, tickets_api.router]
