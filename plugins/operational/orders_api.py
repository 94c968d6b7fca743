"""REST endpoints for orders under ``/api/operational/``."""

from fastapi import APIRouter

router = APIRouter()
