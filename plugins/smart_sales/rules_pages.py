"""``/smart_sales/rules``: the mined rules and the runs that found them.

The page shows a run (the current one: the latest successful run, or ``?run=ID``) with its
parameters, time, baskets and capped baskets, its rules in plain terms (product names and SKUs,
support and confidence as percentages, lift as "3.1×"), filters, the run history, a "Mine now"
form for holders of ``smart_sales.rule:mine`` and mute/unmute buttons for holders of
``smart_sales.rule:review``. Forms carry the CSRF token; mute and unmute answer htmx with the
rule's row and plain forms with a redirect, as the mining form does (POST-redirect-GET).

A bad query parameter (a ``run`` that is not a run id, an unknown ``sort`` or ``muted``, a
``page`` that is not a positive whole number) is answered 422 naming it, as the API does; a run
id that does not exist is 404.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from core import audit
from core.errors import Invalid, NotFoundError
from core.i18n import N_, Msg, format_number, parse_amount
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import (
    UIContext,
    csrf_check,
    flash_redirect,
    is_htmx,
    page,
    read_flash,
    ui_principal,
)
from plugins.smart_sales import runs
from plugins.smart_sales.mining import MiningError
from plugins.smart_sales.models import MiningRun, MutedRule, Rule

router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)

READ, MINE, REVIEW = "smart_sales.rule:read", "smart_sales.rule:mine", "smart_sales.rule:review"
PAGE = "/smart_sales/rules"
PAGE_SIZE = 100
HISTORY = 20
TEMPLATE, ROW = "smart_sales/rules.html", "smart_sales/rule_row.html"
SORT_LABELS = {
    "confidence": N_("Confidence"),
    "lift": N_("Lift"),
    "support": N_("Support"),
}
STATUS_LABELS = {"running": N_("Running"), "ok": N_("Done"), "failed": N_("Failed")}
#: The mining form's fields: (name, label, kind); percentages are typed as 1 for 1 %.
FIELDS = (
    ("min_support", N_("Minimum support (share of baskets, %)"), "percent"),
    ("min_confidence", N_("Minimum confidence, %"), "percent"),
    ("min_lift", N_("Minimum lift"), "number"),
    ("max_length", N_("Most products in a rule"), "whole"),
    ("max_basket_size", N_("Largest basket mined, products"), "whole"),
)


def _crm(request: Request) -> Any:
    return request.app.state.crm


@contextmanager
def _writing(request: Request) -> Iterator[Session]:
    """A write transaction whose audit rows name the page's signed-in user."""
    with _crm(request).db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        yield session


# --- what the page shows ------------------------------------------------------------------------


def rows_for(session: Session, rules: list[Rule]) -> list[dict[str, Any]]:
    """The rules as table rows: each side as (product name, SKU) pairs, the mute if any, the
    lift rounded half up to one decimal (1.25 shows as 1.3×)."""
    from plugins.operational.models import Product

    ids = sorted({i for r in rules for i in (*r.antecedent_ids, *r.consequent_ids)})
    names = (
        dict(session.execute(select(Product.id, Product.name).where(Product.id.in_(ids))).all())
        if ids
        else {}
    )
    keys = {r.key for r in rules}
    mutes = (
        {m.key: m for m in session.scalars(select(MutedRule).where(MutedRule.key.in_(keys)))}
        if keys
        else {}
    )

    def side(product_ids: list[int], skus: list[str]) -> list[tuple[str, str]]:
        return [(names.get(i, sku), sku) for i, sku in zip(product_ids, skus, strict=True)]

    return [
        {
            "rule": r,
            "antecedent": side(r.antecedent_ids, r.antecedent),
            "consequent": side(r.consequent_ids, r.consequent),
            "muted": mutes.get(r.key),
            "lift": Decimal(repr(r.lift)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP),
        }
        for r in rules
    ]


def _user_names(session: Session, ids: set[int]) -> dict[int, str]:
    from core.models import User

    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    found = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {uid: name or email for uid, name, email in found}


def _refused(field: str, message: str) -> HTTPException:
    """422 naming the query parameter ``field`` (the error page shows ``field: message``)."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {message}")


#: The largest run id or page number read from a query (a database integer).
LARGEST = 2**31 - 1


def _whole(name: str, text: str) -> int:
    """The whole number ``text`` (1 to ``LARGEST``) of query parameter ``name``; 422 naming it
    if not."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= LARGEST:
        raise _refused(name, f"{text[:40]!r} is not a whole number from 1 to {LARGEST}")
    return int(text)


def _chosen_run(session: Session, run_id: str) -> MiningRun | None:
    """Run ``run_id`` (404 when there is none; 422 when it is not an id), else the current
    run (``run_id`` empty)."""
    if not run_id.strip():
        return runs.current_run(session)
    run = session.get(MiningRun, _whole("run", run_id))
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id.strip()}")
    return run


def _filters(request: Request) -> dict[str, Any]:
    """The rule filters of the query string (empty ones: their defaults); 422 naming a filter
    whose value is unknown."""
    params = request.query_params
    sort = params.get("sort") or "confidence"
    muted = params.get("muted", "")
    if sort not in SORT_LABELS:
        raise _refused("sort", f"unknown value {sort!r}; known: {', '.join(SORT_LABELS)}")
    if muted not in ("", "yes", "no"):
        raise _refused("muted", f"unknown value {muted!r}; known: 'yes', 'no' or empty")
    return {
        "sku": params.get("sku", "").strip()[:64],
        "muted": muted,
        "sort": sort,
        "page": _whole("page", params.get("page") or "1"),
    }


def _page_url(request: Request, number: int) -> str:
    """This page with the same query but page ``number``."""
    from urllib.parse import urlencode

    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return PAGE + "?" + urlencode([*query, ("page", str(number))])


def _form_defaults(crm: Any, language: str) -> dict[str, str]:
    """The mining form's values: the module's settings, percentages as percent, numbers
    written the way ``language`` writes them (``1,2`` in Vietnamese)."""
    from plugins.smart_sales.config import settings

    values = settings(crm)
    shown = {}
    for name, _label, kind in FIELDS:
        if kind == "whole":
            shown[name] = str(values[name])
            continue
        value = Decimal(str(values[name])) * (100 if kind == "percent" else 1)
        shown[name] = format_number(value.normalize(), language)
    shown["since"] = ""
    shown["raise_alerts"] = "yes"
    return shown


def render_page(
    request: Request,
    principal: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    """The rules page; ``typed`` shows a refused mining form as it was typed."""
    crm = _crm(request)
    flash = read_flash(request)
    filters = _filters(request)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        run = _chosen_run(session, request.query_params.get("run", ""))
        latest = session.scalars(select(MiningRun).order_by(MiningRun.id.desc()).limit(1)).first()
        total, rules = 0, []
        if run is not None and run.status == "ok":
            query = runs.rules_query(
                session,
                run.id,
                sku=filters["sku"] or None,
                muted={"yes": True, "no": False}.get(filters["muted"]),
                sort=filters["sort"],
            )
            offset = (filters["page"] - 1) * PAGE_SIZE
            total, rules = runs.page(session, query, PAGE_SIZE, offset)
        history = list(
            session.scalars(select(MiningRun).order_by(MiningRun.id.desc()).limit(HISTORY))
        )
        people = _user_names(session, {r.started_by for r in [*history, *filter(None, [run])]})
        return page(
            ctx,
            TEMPLATE,
            status_code=status_code,
            run=run,
            latest=latest,
            rows=rows_for(session, rules),
            total=total,
            first=(filters["page"] - 1) * PAGE_SIZE + 1,
            pages=max(1, math.ceil(total / PAGE_SIZE)),
            filters=filters,
            page_url=lambda number: _page_url(request, number),
            history=history,
            people=people,
            sort_labels=SORT_LABELS,
            status_labels=STATUS_LABELS,
            fields=FIELDS,
            form=typed or _form_defaults(crm, principal.user.language),
            can_review=principal.can(REVIEW),
            can_mine=principal.can(MINE),
            message=flash["message"],
            error=error or flash["error"],
        )


@router.get("/rules", response_class=HTMLResponse, openapi_extra=access(READ))
def rules_page(request: Request, principal: Principal = Depends(ui_principal)) -> HTMLResponse:
    """The current run's rules (or ``?run=ID``'s), filters ``sku``, ``muted``, ``sort``,
    ``page``; the run history; the mining form for those who may mine."""
    principal.require(READ)
    return render_page(request, principal)


# --- mining -------------------------------------------------------------------------------------


def _number(text: str, name: str, language: str) -> Decimal:
    try:
        return parse_amount(text, language)
    except (ValueError, InvalidOperation):
        raise Invalid({name: "enter a number such as 1.5"}) from None


def params_from(form: FormData, language: str) -> dict[str, Any]:
    """The mining parameters the form gives (empty fields: the settings); ``Invalid`` naming
    the field when one is out of range or unreadable."""
    import datetime as dt

    params: dict[str, Any] = {}
    for name, _label, kind in FIELDS:
        text = str(form.get(name) or "").strip()
        if not text:
            continue
        if kind == "whole":
            if not text.isdigit():
                raise Invalid({name: "enter a whole number"})
            params[name] = int(text)
        else:
            value = _number(text, name, language)
            params[name] = float(value / 100 if kind == "percent" else value)
    problems = runs.check_params(params)
    if problems:
        raise Invalid(problems)
    since = str(form.get("since") or "").strip()
    if since:
        try:
            params["since"] = dt.date.fromisoformat(since)
        except ValueError:
            raise Invalid({"since": "enter a day as YYYY-MM-DD"}) from None
    return params


@router.post("/rules/mine", openapi_extra=access(MINE))
async def mine_now(request: Request, principal: Principal = Depends(ui_principal)) -> Response:
    """Mine now with the form's parameters; back to the page with what it found, or why it
    was refused (the failed run shows in the history)."""
    principal.require(MINE)
    form = await request.form()
    typed = {name: str(form.get(name) or "") for name, _l, _k in FIELDS}
    typed["since"] = str(form.get("since") or "")
    typed["raise_alerts"] = "yes" if form.get("raise_alerts") else ""
    try:
        params = params_from(form, principal.user.language)
    except Invalid as exc:
        return render_page(request, principal, error=str(exc), status_code=422, typed=typed)
    crm = _crm(request)
    actor = getattr(request.state, "actor", None) or audit.Actor(
        principal.user.email, principal.user.id
    )

    def work() -> MiningRun:
        with audit.acting_as(actor):
            return runs.run_mining(
                crm,
                **params,
                started_by=principal.user.id,
                raise_alerts=bool(typed["raise_alerts"]),
            )

    from starlette.concurrency import run_in_threadpool

    try:
        run = await run_in_threadpool(work)
    except MiningError as exc:
        return flash_redirect(
            request, PAGE, error=Msg(N_("Mining refused: %(reason)s"), reason=str(exc))
        )
    return flash_redirect(
        request,
        PAGE,
        message=Msg(
            N_("Mined %(rules)s rules from %(baskets)s baskets; %(alerts)s alerts raised."),
            rules=run.rules,
            baskets=run.baskets,
            alerts=run.alerts_raised,
        ),
    )


# --- mute and unmute ----------------------------------------------------------------------------


def _back(request: Request) -> str:
    """The rules page the form was sent from (filters kept), else the plain rules page."""
    from urllib.parse import urlsplit

    back = urlsplit(request.headers.get("referer", ""))
    if back.netloc == request.url.netloc and back.path == PAGE:
        return PAGE + (f"?{back.query}" if back.query else "")
    return PAGE


def _row(request: Request, principal: Principal, rule_id: int, error: str = "") -> HTMLResponse:
    with _crm(request).db.session() as session:
        ctx = UIContext(request, principal, session)
        rule = session.get(Rule, rule_id)
        if rule is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule {rule_id}")
        [row] = rows_for(session, [rule])
        return page(ctx, ROW, row=row, can_review=principal.can(REVIEW), row_error=error)


def _toggle(request: Request, principal: Principal, rule_id: int, change: Any) -> Response:
    """Run ``change(session, key)`` on rule ``rule_id``; the row (htmx) or a redirect."""
    principal.require(REVIEW)
    with _crm(request).db.session() as session:
        rule = session.get(Rule, rule_id)
        if rule is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule {rule_id}")
        key = rule.key
    try:
        with _writing(request) as session:
            message = change(session, key)
    except NotFoundError as exc:  # pragma: no cover - the rule was just read
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    if is_htmx(request):
        return _row(request, principal, rule_id)
    return flash_redirect(request, _back(request), message=message)


@router.post("/rules/{rule_id}/mute", openapi_extra=access(REVIEW))
def mute(
    request: Request,
    rule_id: int,
    reason: str = Form("", max_length=2000),
    principal: Principal = Depends(ui_principal),
) -> Response:
    """Mute a rule (by the id of one of its rows): it raises no more alerts, in any run."""

    def change(session: Session, key: str) -> str:
        runs.mute(session, key, principal.user.id, reason.strip())
        return Msg(N_("Rule %(key)s muted: it raises no more alerts."), key=key)

    return _toggle(request, principal, rule_id, change)


@router.post("/rules/{rule_id}/unmute", openapi_extra=access(REVIEW))
def unmute(
    request: Request, rule_id: int, principal: Principal = Depends(ui_principal)
) -> Response:
    """Unmute a rule: it raises alerts again from the next generation."""

    def change(session: Session, key: str) -> str:
        runs.unmute(session, key)
        return Msg(N_("Rule %(key)s unmuted."), key=key)

    return _toggle(request, principal, rule_id, change)
