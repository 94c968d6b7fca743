"""The activity feed page, ``/collaborative/feed``, and its htmx fragments.

The page shows the newest entries with a filter form (scope, kinds). "Load more" fetches the
next page (``/feed/more``, entries older than the last one shown) and swaps itself for it; a
hidden element at the top polls ``/feed/new`` every minute and swaps itself for the entries
newer than the first one shown, followed by a new poller. Nothing reloads the whole page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from core.errors import Invalid, NotFoundError
from core.i18n import N_
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, page, ui_principal
from plugins.collaborative import feed
from plugins.collaborative.feed_views import READ, parse_time, rows

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)
PAGE_SIZE = 30
SCOPE_LABELS = (
    ("mine", N_("Everything of mine")),
    ("following", N_("Customers I follow")),
    ("team", N_("My teams' customers")),
)


def _need(principal: Principal) -> None:
    if not principal.can(READ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"permission {READ} required")


class _Filters:
    """The feed's filters from the query string."""

    def __init__(self, request: Request) -> None:
        params = request.query_params
        self.scope = params.get("scope") or "mine"
        self.kinds = [k for k in params.getlist("kinds") if k]
        customer = params.get("customer_id") or ""
        self.customer_id = int(customer) if customer.isdigit() and len(customer) < 12 else None

    def query(self, **extra: Any) -> str:
        """The filters (and ``extra``) as a query string."""
        pairs: list[tuple[str, Any]] = [("scope", self.scope)]
        pairs += [("kinds", k) for k in self.kinds]
        if self.customer_id is not None:
            pairs.append(("customer_id", self.customer_id))
        pairs += [(k, v) for k, v in extra.items() if v is not None]
        return urlencode(pairs)


def _page(
    ctx: UIContext, filters: _Filters, before: dt.datetime | None, limit: int = PAGE_SIZE
) -> feed.FeedPage:
    assert ctx.session is not None and ctx.principal is not None
    try:
        return feed.feed(
            ctx.crm,
            ctx.session,
            ctx.principal.user,
            scope=filters.scope,
            kinds=filters.kinds,
            before=before,
            limit=limit,
            customer_id=filters.customer_id,
        )
    except Invalid as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


def _more_url(filters: _Filters, result: feed.FeedPage) -> str | None:
    if result.next_before is None:
        return None
    return "/collaborative/feed/more?" + filters.query(before=result.next_before.isoformat())


def _poll_url(filters: _Filters, newest: dt.datetime | None) -> str:
    return "/collaborative/feed/new?" + filters.query(after=newest.isoformat() if newest else None)


@router.get("/feed", response_class=HTMLResponse, openapi_extra=access(READ))
def feed_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The feed: what happened with my customers, newest first, filterable."""
    _need(principal)
    filters = _Filters(request)
    with request.app.state.crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        result = _page(ctx, filters, None)
        kinds = []
        for kind, label in feed.kinds(ctx.crm, principal.user):
            kinds.append((kind, ctx.gettext(label), kind in filters.kinds))
        scopes = []
        for scope, label in SCOPE_LABELS:
            scopes.append((scope, ctx.gettext(label), scope == filters.scope))
        newest = result.items[0].at if result.items else None
        return page(
            ctx,
            "collaborative/feed.html",
            entries=rows(ctx, result.items),
            more=_more_url(filters, result),
            poll=_poll_url(filters, newest),
            kinds=kinds,
            scopes=scopes,
            customer_id=filters.customer_id,
        )


@router.get("/feed/more", response_class=HTMLResponse, openapi_extra=access(READ))
def feed_more(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The next page of entries (older than ``before``) and a new "Load more" button."""
    _need(principal)
    filters = _Filters(request)
    before = parse_time(request.query_params.get("before"))
    if before is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "before: give a time")
    with request.app.state.crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        result = _page(ctx, filters, before)
        return page(
            ctx,
            "collaborative/feed_items.html",
            entries=rows(ctx, result.items),
            more=_more_url(filters, result),
            poll=None,
        )


@router.get("/feed/new", response_class=HTMLResponse, openapi_extra=access(READ))
def feed_new(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """Entries newer than ``after`` (polled every minute), after a new poller."""
    _need(principal)
    filters = _Filters(request)
    after = parse_time(request.query_params.get("after"))
    with request.app.state.crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        result = _page(ctx, filters, None, feed.MAX_LIMIT)
        fresh = [e for e in result.items if after is None or e.at > after]
        newest = fresh[0].at if fresh else after
        return page(
            ctx,
            "collaborative/feed_items.html",
            entries=rows(ctx, fresh),
            more=None,
            poll=_poll_url(filters, newest),
        )
