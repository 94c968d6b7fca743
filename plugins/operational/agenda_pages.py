"""``/operational/agenda``: the signed-in user's open activities (their agenda)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import ui_principal
from plugins.operational.pages import new_router

router = new_router()


@router.get("/agenda", openapi_extra=access(None))
def my_agenda(request: Request, principal: Principal = Depends(ui_principal)) -> RedirectResponse:
    """The activity list filtered to the user's open activities, soonest first."""
    return RedirectResponse(
        f"/ui/activity?state=open&user_id={principal.user.id}&sort=due_at", status_code=303
    )
