"""REST endpoints for tickets under ``/api/operational/``."""

from fastapi import APIRouter

router = APIRouter()
