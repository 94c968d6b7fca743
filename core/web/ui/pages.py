"""Generated screens for every registered resource: list, export, form, detail, kanban.

Routes are generic (``/ui/<resource>/...``); what they show comes from the views in
``app.state.ui.registry``. Reads use a read session, writes one transaction with the audit log
attributing changes to the signed-in user. Every query carries the user's record rule.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core.customers.exporter import neutralise
from core.i18n import N_
from core.ui import data
from core.ui import registry as reg
from core.ui.specs import Column, FormErrors, Resource, StaleRecord
from core.web.access import access
from core.web.deps import Principal
from core.web.ui.context import UIContext, csrf_check, is_htmx, page, ui_principal

STALE_MESSAGE = N_(
    "Someone else changed this record meanwhile. The form now shows their version; "
    "make your change again."
)
router = APIRouter(dependencies=[Depends(csrf_check)], include_in_schema=False)


def _resource(request: Request, name: str) -> Resource:
    try:
        return request.app.state.ui.registry.resource(name)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no screen {name!r}") from None


def _view(request: Request, resource: Resource, kind: str) -> Any:
    view = request.app.state.ui.registry.view(resource.name, kind)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{resource.name} has no {kind} screen")
    return view


def reference_titles(
    session: Session, registry: reg.UIRegistry, model: type, names: list[str], rows: list[Any]
) -> dict[str, dict[int, str]]:
    """Titles of the records that reference columns of ``rows`` point to, one query each."""
    titles: dict[str, dict[int, str]] = {}
    by_table = {r.model.__table__.name: r for r in registry.resources.values()}
    for name in names:
        column = reg.column_of(model, name)
        if column is None or not column.foreign_keys:
            continue
        target = next(iter(column.foreign_keys)).column.table
        resource = by_table.get(target.name)
        ids = {getattr(r, name) for r in rows} - {None}
        if resource is None or not ids:
            continue
        title = getattr(resource.model, resource.title_field)
        found = session.execute(
            select(resource.model.id, title).where(resource.model.id.in_(ids))
        ).all()
        titles[name] = dict(found)
    return titles


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in ("cursor", "sort")}


@router.get("/ui/{name}", response_class=HTMLResponse, openapi_extra=access("{resource}:read"))
def list_page(
    request: Request, name: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """The list of a resource: search, filters, sort, keyset pages, capped count."""
    resource = _resource(request, name)
    principal.require(resource.permission("read"))
    view = _view(request, resource, "list")
    crm = request.app.state.crm
    params = _params(request)
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        query = data.filtered(crm, principal.user, resource, view, params)
        try:
            result = data.page(
                session,
                query,
                resource,
                view,
                request.query_params.get("sort"),
                request.query_params.get("cursor"),
                searching=bool(params.get("q", "").strip()),
            )
        except data.BadCursor as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        result.total, result.capped = data.count_capped(session, query)
        names = [c.name for c in view.columns if reg.widget_for(resource.model, c) == "reference"]
        titles = reference_titles(session, ctx.ui.registry, resource.model, names, result.rows)
        filters = [(f, data.choices_of(f, session)) for f in view.filters]  # type: ignore[arg-type]
        fragment = request.headers.get("hx-target") == "list-results"
        return page(
            ctx,
            "list_results.html" if fragment else "list.html",
            resource=resource,
            view=view,
            result=result,
            titles=titles,
            filters=filters,
            params=params,
            kanban=ctx.ui.registry.view(name, "kanban") is not None,
            widget_for=lambda c: reg.widget_for(resource.model, c),
            label_of=reg.label_of,
        )


@router.get("/ui/{name}/export.csv", openapi_extra=access("{resource}:export"))
def export_csv(
    request: Request, name: str, principal: Principal = Depends(ui_principal)
) -> StreamingResponse:
    """The list's rows under the current search and filters, streamed as CSV."""
    resource = _resource(request, name)
    principal.require(resource.permission("export"))
    view = _view(request, resource, "list")
    crm = request.app.state.crm
    params = _params(request)
    user = principal.user
    columns = view.columns

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", *[c.name for c in columns]])
        with crm.db.session() as session:
            query = data.filtered(crm, user, resource, view, params)
            for count, row in enumerate(data.stream(session, query), 1):
                cells = [c.value(row) if c.value else getattr(row, c.name, "") for c in columns]
                writer.writerow([row.id, *[neutralise(_plain(v)) for v in cells]])
                if count % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    audit_export(crm, request, resource, params)
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{resource.name}.csv"'},
    )


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def audit_export(crm: Any, request: Request, resource: Resource, params: dict[str, str]) -> None:
    """Record who exported what (an export is a copy of customer data leaving the CRM)."""
    with crm.db.write() as session:
        session.info[audit.REQUEST_KEY] = request
        audit.record(
            session, "export", resource.name, None, detail="web export", after={"filters": params}
        )


def _render_form(
    ctx: UIContext,
    resource: Resource,
    record: Any,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = _view(ctx.request, resource, "form")
    session = ctx.session
    shown = []
    for item in view.fields:
        if values is not None and item.name in values:
            value = values[item.name]
        else:
            value = data.field_value(session, record, item)
        shown.append(
            {
                "field": item,
                "value": value,
                "widget": reg.widget_for(resource.model, item),
                "required": reg.required(resource.model, item),
                "max_length": reg.max_length(resource.model, item),
                "readonly": data.is_readonly(item, record, ctx.principal),
                "choices": data.choices_of(item, session),
                "label": reg.label_of(item),
            }
        )
    sections = view.sections or [""]
    for entry in shown:
        if entry["field"].section not in sections:
            sections.append(entry["field"].section)
    return page(
        ctx,
        "form.html",
        status_code=status_code,
        resource=resource,
        record=record,
        fields=shown,
        sections=sections,
        errors=errors or {},
    )


@router.get(
    "/ui/{name}/new", response_class=HTMLResponse, openapi_extra=access("{resource}:create")
)
def new_form(
    request: Request, name: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """An empty form for a new record."""
    resource = _resource(request, name)
    principal.require(resource.permission("create"))
    with request.app.state.crm.db.session() as session:
        return _render_form(UIContext(request, principal, session), resource, None)


@router.get(
    "/ui/{name}/{record_id:int}/edit",
    response_class=HTMLResponse,
    openapi_extra=access("{resource}:update", scoped=True),
)
def edit_form(
    request: Request, name: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """The form of an existing record."""
    resource = _resource(request, name)
    principal.require(resource.permission("update"))
    crm = request.app.state.crm
    with crm.db.session() as session:
        record = data.get(crm, session, principal.user, resource, record_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {resource.name} {record_id}")
        return _render_form(UIContext(request, principal, session), resource, record)


async def _form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post(
    "/ui/{name}/new", response_class=HTMLResponse, openapi_extra=access("{resource}:create")
)
async def create(
    request: Request, name: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """Save a new record; the form comes back with a message per bad field."""
    form = await _form_data(request)
    return await _run_sync(request, _save, request, name, None, form, principal)


@router.post(
    "/ui/{name}/{record_id:int}/edit",
    response_class=HTMLResponse,
    openapi_extra=access("{resource}:update", scoped=True),
)
async def update(
    request: Request, name: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """Save changes to a record; a stale version shows the current values and a warning."""
    form = await _form_data(request)
    return await _run_sync(request, _save, request, name, record_id, form, principal)


async def _run_sync(request: Request, func: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)


def _save(
    request: Request,
    name: str,
    record_id: int | None,
    form: dict[str, str],
    principal: Principal,
) -> HTMLResponse:
    resource = _resource(request, name)
    principal.require(resource.permission("create" if record_id is None else "update"))
    view = _view(request, resource, "form")
    crm = request.app.state.crm
    version = int(form["version"]) if form.get("version", "").isdigit() else None
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            ctx = UIContext(request, principal, session)
            record = None
            if record_id is not None:
                record = data.get(crm, session, principal.user, resource, record_id)
                if record is None:
                    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {name} {record_id}")
            values = data.parse(
                session,
                resource,
                view.fields,
                form,
                record,
                principal,
                crm.settings.default_currency,
            )
            record = data.save(ctx, resource, view.fields, record, values, version)
            saved_id = record.id
    except FormErrors as exc:
        return _form_again(request, resource, record_id, form, principal, exc.errors, 422)
    except (StaleRecord, StaleDataError):
        message = STALE_MESSAGE
        return _form_again(request, resource, record_id, None, principal, {"": message}, 409)
    return RedirectResponse(f"/ui/{name}/{saved_id}?saved=1", status_code=303)


def _form_again(
    request: Request,
    resource: Resource,
    record_id: int | None,
    form: dict[str, str] | None,
    principal: Principal,
    errors: dict[str, str],
    status_code: int,
) -> HTMLResponse:
    crm = request.app.state.crm
    with crm.db.session() as session:
        record = (
            data.get(crm, session, principal.user, resource, record_id)
            if record_id is not None
            else None
        )
        return _render_form(
            UIContext(request, principal, session), resource, record, form, errors, status_code
        )


@router.get(
    "/ui/{name}/kanban", response_class=HTMLResponse, openapi_extra=access("{resource}:read")
)
def kanban_page(
    request: Request, name: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """Cards in columns by the kanban's group field; each column is one indexed query."""
    resource = _resource(request, name)
    principal.require(resource.permission("read"))
    view = _view(request, resource, "kanban")
    list_view = request.app.state.ui.registry.view(name, "list")
    crm = request.app.state.crm
    params = _params(request)
    model = resource.model
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        base = data.filtered(crm, principal.user, resource, list_view, params)
        group_column = getattr(model, view.group_by)
        columns = []
        groups = _groups(view, session)
        for value, label in groups:
            cards = list(
                session.scalars(
                    base.where(group_column == value)
                    .order_by(model.id.desc())
                    .limit(view.limit_per_group)
                )
            )
            columns.append({"value": value, "label": label, "cards": cards})
        form = ctx.ui.registry.view(name, "form")
        choices = {f.name: data.choices_of(f, session) for f in form.fields} if form else {}
        return page(
            ctx,
            "kanban.html",
            resource=resource,
            view=view,
            columns=columns,
            card_widgets={n: reg.widget_for(model, Column(n)) for n in view.card_fields},
            card_choices={n: choices[n] for n in view.card_fields if choices.get(n)},
            groups=groups,
            can_move=principal.can(resource.permission("update")),
        )


def _groups(view: Any, session: Session) -> list[tuple[str, str]]:
    return list(view.groups(session) if callable(view.groups) else view.groups)


@router.post(
    "/ui/{name}/{record_id:int}/move",
    response_class=HTMLResponse,
    openapi_extra=access("{resource}:update", scoped=True),
)
async def move_card(
    request: Request, name: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """Move a kanban card to another group; saved through the normal save, so audited."""
    form = await _form_data(request)
    return await _run_sync(request, _move, request, name, record_id, form, principal)


def _move(
    request: Request, name: str, record_id: int, form: dict[str, str], principal: Principal
) -> HTMLResponse:
    resource = _resource(request, name)
    principal.require(resource.permission("update"))
    view = _view(request, resource, "kanban")
    group = form.get("group", "")
    version = int(form["version"]) if form.get("version", "").isdigit() else None
    crm = request.app.state.crm
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            # a record the user may not see is 404 whatever the form holds
            record = data.get(crm, session, principal.user, resource, record_id)
            if record is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {name} {record_id}")
            if group not in {value for value, _ in _groups(view, session)}:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown group {group!r}"
                )
            data.save(
                UIContext(request, principal, session),
                resource,
                [],
                record,
                {view.group_by: group},
                version,
            )
    except (StaleRecord, StaleDataError):
        raise HTTPException(
            status.HTTP_409_CONFLICT, "someone else moved this card meanwhile; reload the board"
        ) from None
    except FormErrors as exc:
        translate = request.app.state.ui.translator.translate
        detail = "; ".join(translate(m) for m in exc.errors.values())
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    if is_htmx(request):
        return HTMLResponse("", headers={"HX-Refresh": "true"})
    return RedirectResponse(f"/ui/{name}/kanban", status_code=303)


@router.get(
    "/ui/{name}/{record_id:int}",
    response_class=HTMLResponse,
    openapi_extra=access("{resource}:read", scoped=True),
)
def detail_page(
    request: Request, name: str, record_id: int, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """The page of one record: its fields, tabs, actions and (customers) the 360 slots."""
    resource = _resource(request, name)
    principal.require(resource.permission("read"))
    view = _view(request, resource, "detail")
    crm = request.app.state.crm
    with crm.db.session() as session:
        ctx = UIContext(request, principal, session)
        record = data.get(crm, session, principal.user, resource, record_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {resource.name} {record_id}")
        fields = [
            {
                "label": reg.label_of(f),
                "value": data.field_value(session, record, f),
                "widget": reg.widget_for(resource.model, f),
                "name": f.name,
                "choices": data.choices_of(f, session) if f.widget != "reference" else None,
            }
            for f in view.fields
        ]
        names = [f["name"] for f in fields if f["widget"] == "reference"]
        titles = reference_titles(session, ctx.ui.registry, resource.model, names, [record])
        tabs = []
        for tab in view.tabs:
            body = tab.render(ctx, record) if tab.render is not None else None
            tabs.append(
                {
                    "tab": tab,
                    "body": body,
                    "fields": [
                        {
                            "label": reg.label_of(f),
                            "value": data.field_value(session, record, f),
                            "widget": reg.widget_for(resource.model, f),
                            "name": f.name,
                        }
                        for f in tab.fields
                    ],
                }
            )
        slots = [s for s in ctx.ui.registry.slots if s.resource == name and ctx.can(s.permission)]
        return page(
            ctx,
            "detail.html",
            resource=resource,
            record=record,
            title=getattr(record, resource.title_field, record_id),
            fields=fields,
            titles=titles,
            tabs=tabs,
            slots=slots,
            actions=[
                a
                for a in view.actions
                if ctx.can(a.permission) and (a.when is None or a.when(record))
            ],
            can_edit=principal.can(resource.permission("update"))
            and ctx.ui.registry.view(name, "form") is not None,
            saved=request.query_params.get("saved") == "1",
        )


@router.post(
    "/ui/{name}/actions/{action}",
    response_class=HTMLResponse,
    openapi_extra=access("{action}", scoped=True),
)
async def run_action(
    request: Request, name: str, action: str, principal: Principal = Depends(ui_principal)
) -> HTMLResponse:
    """Run a row, bulk or detail action on the selected records the user may see."""
    form = await request.form()
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()]
    return await _run_sync(request, _action, request, name, action, ids, principal)


def _action(
    request: Request, name: str, action: str, ids: list[int], principal: Principal
) -> HTMLResponse:
    resource = _resource(request, name)
    registry = request.app.state.ui.registry
    views = [registry.view(name, "list"), registry.view(name, "detail")]
    found = None
    for view in views:
        if view is None:
            continue
        for candidate in [
            *getattr(view, "row_actions", []),
            *getattr(view, "bulk_actions", []),
            *getattr(view, "actions", []),
        ]:
            if candidate.name == action:
                found = candidate
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
    principal.require(found.permission)
    if not ids:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "select at least one record")
    crm = request.app.state.crm
    status_code = status.HTTP_200_OK
    try:
        with crm.db.write() as session:
            session.info[audit.REQUEST_KEY] = request
            ctx = UIContext(request, principal, session)
            model = resource.model
            query = data.filtered(crm, principal.user, resource, None, {}).where(model.id.in_(ids))
            visible = [r.id for r in session.scalars(query)]
            if len(visible) != len(set(ids)):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, "some records do not exist or are hidden"
                )
            message = found.run(ctx, visible)
    except FormErrors as exc:
        # the action refused a record (a mailing that is no longer a draft): nothing was written
        status_code, message = status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)
    except (StaleRecord, StaleDataError):
        status_code, message = status.HTTP_409_CONFLICT, STALE_MESSAGE
    with crm.db.session() as session:
        return page(
            UIContext(request, principal, session),
            "message.html",
            status_code=status_code,
            message=message,
            back=request.headers.get("referer") or f"/ui/{name}",
        )
