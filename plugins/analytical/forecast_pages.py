"""Pages of this analytics section (being written)."""

from plugins.analytical.pages import new_router

router = new_router()
