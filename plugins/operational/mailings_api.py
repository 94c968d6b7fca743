"""REST endpoints for mailings under ``/api/operational/``."""

from fastapi import APIRouter

router = APIRouter()
