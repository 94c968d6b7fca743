"""The forms of the partner panels, under ``/collaborative/``: link a partner to a customer,
remove a link, add or remove a partner's contact, invite a contact, share and unshare.

htmx requests get the refreshed panel back (an error shows in it, nothing changed); plain form
posts are redirected to the record's page. Every route checks its permission and the record
rules: a customer the user may not see answers 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from core import audit
from core.errors import Conflict, Invalid, NotFoundError
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, is_htmx, page, ui_principal
from plugins.collaborative import partner_views, partners

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


def _message(exc: Exception) -> str:
    if isinstance(exc, Invalid):
        return "; ".join(f"{field}: {why}" for field, why in exc.errors.items())
    return str(exc)


def _run(
    request: Request, principal: Principal, change: Any, panel: Any | None, back: str
) -> Response:
    """Run ``change(ctx)`` in one transaction, then answer htmx with ``panel(ctx, error)``.

    A refused change (invalid, conflicting) rolls back and shows its reason in the panel; a
    plain form post (or one without a ``panel``) is redirected to ``back``.
    """
    crm = request.app.state.crm
    error = None
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            change(UIContext(request, principal, session))
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (Invalid, Conflict) as exc:
        error = _message(exc)
    if panel is None or not is_htmx(request):
        if error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, error)
        return RedirectResponse(back, status_code=303)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        try:
            return HTMLResponse(panel(ctx, error))
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


# --- links -------------------------------------------------------------------------------------


@router.post(
    "/partners/links",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.UPDATE, scoped=True),
)
async def add_link(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Link a partner to a customer (from the customer's "Partners" panel)."""
    principal.require(partner_views.UPDATE)
    form = await _form(request)
    customer_id = _int(form.get("record_id"))
    partner_id = _int(form.get("partner_id"))
    if customer_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such customer")

    def change(ctx: UIContext) -> None:
        if partner_id is None:
            raise Invalid({"partner_id": "choose a partner"})
        partners.link(
            ctx.crm,
            ctx.session,  # type: ignore[arg-type]
            principal.user,
            partner_id,
            "customer",
            customer_id,
            form.get("relation", ""),
            form.get("note", ""),
        )

    return await _in_thread(
        request,
        principal,
        change,
        lambda ctx, error: partner_views.partners_panel(ctx, customer_id, error, form),
        f"/ui/customer/{customer_id}",
    )


@router.post(
    "/partners/{partner_id:int}/links/{link_id:int}/delete",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.UPDATE, scoped=True),
)
async def remove_link(
    request: Request, partner_id: int, link_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Remove a link (from the customer's panel or the partner's page)."""
    principal.require(partner_views.UPDATE)
    form = await _form(request)
    found: dict[str, Any] = {}

    def change(ctx: UIContext) -> None:
        row = partners.get_link(ctx.crm, ctx.session, principal.user, partner_id, link_id)  # type: ignore[arg-type]
        found["customer_id"] = row.customer_id
        partners.unlink(ctx.session, row)  # type: ignore[arg-type]

    def panel(ctx: UIContext, error: str | None) -> Markup:
        return partner_views.partners_panel(ctx, found["customer_id"], error)

    on_customer = form.get("panel") == "customer"
    return await _in_thread(
        request, principal, change, panel if on_customer else None, f"/ui/partner/{partner_id}"
    )


# --- contacts ----------------------------------------------------------------------------------


def _contacts_panel(partner_id: int) -> Any:
    def panel(ctx: UIContext, error: str | None) -> Markup:
        partner = partners.get_partner(ctx.session, partner_id)  # type: ignore[arg-type]
        return partner_views.contacts_tab(ctx, partner, error)

    return panel


@router.post(
    "/partners/{partner_id:int}/contacts",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.UPDATE),
)
async def add_contact(
    request: Request, partner_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Add a person at the partner (from the partner's page)."""
    principal.require(partner_views.UPDATE)
    form = await _form(request)
    values = {k: form.get(k, "") for k in ("name", "email", "phone", "position")}

    def change(ctx: UIContext) -> None:
        partner = partners.get_partner(ctx.session, partner_id)  # type: ignore[arg-type]
        partners.add_contact(ctx.session, partner, values, ctx.crm.settings.default_region)  # type: ignore[arg-type]

    return await _in_thread(
        request, principal, change, _contacts_panel(partner_id), f"/ui/partner/{partner_id}"
    )


@router.post(
    "/partners/{partner_id:int}/contacts/{contact_id:int}/delete",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.UPDATE),
)
async def remove_contact(
    request: Request, partner_id: int, contact_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Remove a contact; their sign-in, if any, is deactivated and their shares end."""
    principal.require(partner_views.UPDATE)

    def change(ctx: UIContext) -> None:
        contact = partners.get_contact(ctx.session, partner_id, contact_id)  # type: ignore[arg-type]
        partners.remove_contact(ctx.session, contact)  # type: ignore[arg-type]

    return await _in_thread(
        request, principal, change, _contacts_panel(partner_id), f"/ui/partner/{partner_id}"
    )


@router.post(
    "/partners/{partner_id:int}/contacts/{contact_id:int}/invite",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.SHARE),
)
async def invite_contact(
    request: Request, partner_id: int, contact_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Give a contact a sign-in; the page shows the generated password once."""
    principal.require(partner_views.SHARE)
    from starlette.concurrency import run_in_threadpool

    def invite() -> Response:
        crm = request.app.state.crm
        try:
            with crm.db.write() as session:
                session.info[audit.REQUEST_KEY] = request
                contact = partners.get_contact(session, partner_id, contact_id)
                invitation = partners.invite(session, contact)
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except (Invalid, Conflict) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, _message(exc)) from None
        response = page(
            UIContext(request, principal),
            "collaborative/partner_invited.html",
            email=invitation.email,
            password=invitation.password,
            partner_id=partner_id,
        )
        response.headers.update(NO_STORE)
        return response

    return await run_in_threadpool(invite)


# --- shares ------------------------------------------------------------------------------------


def _shares_panel(customer_id: int) -> Any:
    return lambda ctx, error: partner_views.shares_panel(ctx, customer_id, error)


async def _share_form(request: Request) -> tuple[int, int | None, str]:
    form = await _form(request)
    customer_id = _int(form.get("customer_id"))
    if customer_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such customer")
    return customer_id, _int(form.get("user_id")), form.get("note", "")


@router.post(
    "/shares", response_class=HTMLResponse, openapi_extra=access(partner_views.SHARE, scoped=True)
)
async def share(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Share a customer with a partner contact (from the customer's "Shared with" panel)."""
    principal.require(partner_views.SHARE)
    customer_id, user_id, note = await _share_form(request)

    def change(ctx: UIContext) -> None:
        if user_id is None:
            raise Invalid({"user_id": "choose a partner contact"})
        partners.share_customer(ctx.crm, ctx.session, principal.user, customer_id, user_id, note)  # type: ignore[arg-type]

    return await _in_thread(
        request, principal, change, _shares_panel(customer_id), f"/ui/customer/{customer_id}"
    )


@router.post(
    "/shares/delete",
    response_class=HTMLResponse,
    openapi_extra=access(partner_views.SHARE, scoped=True),
)
async def unshare(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Stop sharing a customer with a partner contact."""
    principal.require(partner_views.SHARE)
    customer_id, user_id, _ = await _share_form(request)

    def change(ctx: UIContext) -> None:
        if user_id is None:
            raise NotFoundError("no such share")
        partners.unshare(ctx.crm, ctx.session, principal.user, customer_id, user_id)  # type: ignore[arg-type]

    return await _in_thread(
        request, principal, change, _shares_panel(customer_id), f"/ui/customer/{customer_id}"
    )


async def _in_thread(
    request: Request, principal: Principal, change: Any, panel: Any | None, back: str
) -> Response:
    """Run the blocking database work of :func:`_run` off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_run, request, principal, change, panel, back)
