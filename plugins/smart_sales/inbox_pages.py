"""Placeholder: written in the next step of issue 8."""

from fastapi import APIRouter

router = APIRouter()
