"""HTML pages for mailings, under ``/operational/``."""

from plugins.operational.pages import new_router

router = new_router()
