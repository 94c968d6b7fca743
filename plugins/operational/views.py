"""The operational screens: products, orders, pipeline (kanban), activities, interactions,
tickets; the customer 360 panels (what we know, timeline); dashboard widgets; menu entries.

Declared with ``core.ui`` like any third-party module's screens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from core.db import utcnow
from core.i18n import N_
from core.ui import (
    Action,
    Column,
    DetailView,
    Field,
    Filter,
    FormErrors,
    FormView,
    KanbanView,
    ListView,
    MenuItem,
    Resource,
    Slot,
    Tab,
    Widget,
)
from plugins.operational import activities, pipeline
from plugins.operational.models import (
    ACTIVITY_KINDS,
    CHANNELS,
    DIRECTIONS,
    INTERACTION_KINDS,
    ORDER_STATUSES,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    Activity,
    Interaction,
    Mailing,
    MailTemplate,
    Opportunity,
    Order,
    OrderLine,
    Product,
    Ticket,
)


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, v.replace("_", " ").capitalize()) for v in values]


KIND_LABELS = {
    "call": N_("Call"),
    "email": N_("E-mail"),
    "meeting": N_("Meeting"),
    "chat": N_("Chat"),
    "visit": N_("Visit"),
    "note": N_("Note"),
    "todo": N_("To-do"),
}
CHANNEL_LABELS = {
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "zalo": N_("Zalo"),
    "facebook": N_("Facebook"),
    "website": N_("Website"),
    "in_person": N_("In person"),
}
STATUS_LABELS = {
    "placed": N_("Placed"),
    "paid": N_("Paid"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
    "returned": N_("Returned"),
    "new": N_("New"),
    "open": N_("Open"),
    "pending": N_("Pending"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "low": N_("Low"),
    "normal": N_("Normal"),
    "high": N_("High"),
    "urgent": N_("Urgent"),
    "inbound": N_("Inbound"),
    "outbound": N_("Outbound"),
    "internal": N_("Internal"),
}


def _labelled(values: tuple[str, ...], labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(v, labels.get(v, v)) for v in values]


def _pipeline_errors(exc: pipeline.PipelineError) -> FormErrors:
    return FormErrors({exc.field: str(exc)})


# --- save hooks of resources with their own rules -----------------------------------------------


def _create_opportunity(ctx: Any, values: dict[str, Any]) -> Opportunity:
    values.setdefault("owner_id", None)
    values["owner_id"] = values["owner_id"] or ctx.principal.user.id
    values.setdefault("team_id", ctx.principal.user.team_id)
    try:
        return pipeline.create(ctx.session, values, ctx.crm.settings.default_currency)
    except pipeline.PipelineError as exc:
        raise _pipeline_errors(exc) from None


def _update_opportunity(
    ctx: Any, record: Opportunity, values: dict[str, Any], version: Any
) -> None:
    if "lost_reason_id" in values and values["lost_reason_id"] is not None:
        values["lost_reason_id"] = int(values["lost_reason_id"])
    try:
        pipeline.update(ctx.session, record, values, crm=ctx.crm, actor_id=ctx.principal.user.id)
    except pipeline.PipelineError as exc:
        raise _pipeline_errors(exc) from None


def _create_activity(ctx: Any, values: dict[str, Any]) -> Activity:
    values["user_id"] = values.get("user_id") or ctx.principal.user.id
    try:
        return activities.schedule(ctx.session, values)
    except activities.ActivityError as exc:
        raise FormErrors({exc.field: str(exc)}) from None


def _create_interaction(ctx: Any, values: dict[str, Any]) -> Interaction:
    from plugins.operational import interactions

    try:
        return interactions.log(
            ctx.session,
            values["customer_id"],
            values["kind"],
            values["channel"],
            values["subject"],
            direction=values.get("direction") or "outbound",
            body=values.get("body"),
            user_id=ctx.principal.user.id,
            occurred_at=values.get("occurred_at"),
        )
    except ValueError as exc:
        raise FormErrors({"": str(exc)}) from None


def _create_ticket(ctx: Any, values: dict[str, Any]) -> Ticket:
    from plugins.operational import tickets

    try:
        return tickets.create(
            ctx.session,
            values["customer_id"],
            values.get("subject") or "",
            description=values.get("description"),
            priority=values.get("priority") or "normal",
            assignee_id=values.get("assignee_id"),
            team_id=ctx.principal.user.team_id,
            crm=ctx.crm,
            actor_id=ctx.principal.user.id,
        )
    except tickets.TicketError as exc:
        raise FormErrors({exc.field: str(exc)}) from None


def _update_ticket(ctx: Any, ticket: Ticket, values: dict[str, Any], version: Any) -> None:
    from core.ui import StaleRecord
    from plugins.operational import tickets

    status = values.pop("status", None)
    try:
        if values:
            tickets.update(ctx.session, ticket, values, version or ticket.version)
        if status and status != ticket.status:
            tickets.change_status(ticket, status)
    except tickets.StaleTicket:
        raise StaleRecord("ticket changed meanwhile") from None
    except tickets.TicketError as exc:
        raise FormErrors({exc.field: str(exc)}) from None


def _resolve(ctx: Any, ids: list[int]) -> str:
    from core.i18n import Msg
    from plugins.operational import tickets

    links = []
    for ticket in ctx.session.scalars(select(Ticket).where(Ticket.id.in_(ids))):
        try:
            new = tickets.resolve(ctx.session, ticket, crm=ctx.crm, actor_id=ctx.principal.user.id)
            links.append(new.url(ctx.crm.settings.public_url))
        except tickets.TicketError as exc:
            raise FormErrors({exc.field: str(exc)}) from None
    return Msg(
        N_("Resolved. Send the customer this satisfaction survey link (shown once): %(links)s"),
        links=" ".join(links),
    )


def _mailing_errors(exc: Exception) -> FormErrors:
    from plugins.operational import mailings

    if isinstance(exc, mailings.Invalid):
        return FormErrors(dict(exc.errors))
    return FormErrors({"": str(exc)})


def _create_template(ctx: Any, values: dict[str, Any]) -> Any:
    from plugins.operational import mailings

    try:
        return mailings.create_template(
            ctx.session,
            values.get("name") or "",
            values.get("subject") or "",
            values.get("body") or "",
        )
    except (mailings.Invalid, mailings.Conflict) as exc:
        raise _mailing_errors(exc) from None


def _update_template(ctx: Any, record: Any, values: dict[str, Any], version: Any) -> None:
    from core.ui import StaleRecord
    from plugins.operational import mailings

    try:
        mailings.update_template(ctx.session, record, values, version or record.version)
    except mailings.StaleVersion:
        raise StaleRecord("template changed meanwhile") from None
    except (mailings.Invalid, mailings.Conflict) as exc:
        raise _mailing_errors(exc) from None


def _audience(values: dict[str, Any]) -> dict[str, Any]:
    audience = {k: values.pop(k) for k in ("audience_tag", "audience_country") if k in values}
    return {k.removeprefix("audience_"): v for k, v in audience.items() if v}


def _create_mailing(ctx: Any, values: dict[str, Any]) -> Any:
    from plugins.operational import mailings

    audience = _audience(values)
    values["audience"] = audience or None
    if str(values.get("template_id") or "").isdigit():
        values["template_id"] = int(values["template_id"])
    try:
        return mailings.create_mailing(ctx.session, values, ctx.principal.user.id)
    except (mailings.Invalid, mailings.Conflict) as exc:
        raise _mailing_errors(exc) from None


def _schedule(ctx: Any, ids: list[int]) -> str:
    from core.i18n import Msg
    from plugins.operational import mailings
    from plugins.operational.models import Mailing

    queued = 0
    for mailing in ctx.session.scalars(select(Mailing).where(Mailing.id.in_(ids))):
        try:
            counts = mailings.schedule(
                ctx.session, ctx.crm, mailing, mailing.version, user=ctx.principal.user
            )
        except (mailings.Invalid, mailings.Conflict, mailings.StaleVersion) as exc:
            raise _mailing_errors(exc) from None
        queued += counts["queued"]
    return Msg(N_("Scheduled: %(count)s recipients queued."), count=queued)


def _recipients_tab(ctx: Any, mailing: Any) -> str:
    from plugins.operational import mailings

    counts = mailings.status_counts(ctx.session, [mailing.id]).get(mailing.id, {})
    return ctx.render("operational/recipients.html", counts=counts)


def _templates(session: Any) -> list[tuple[str, str]]:
    from plugins.operational.models import MailTemplate

    rows = session.execute(select(MailTemplate.id, MailTemplate.name).order_by(MailTemplate.name))
    return [(str(i), name) for i, name in rows]


def _complete(ctx: Any, ids: list[int]) -> str:
    done = 0
    for activity in ctx.session.scalars(select(Activity).where(Activity.id.in_(ids))):
        if activity.done_at is None:
            activities.complete(ctx.session, activity)
            done += 1
    return N_("Done; logged on the customer's timeline.") if done else N_("Already done.")


def _users(session: Any) -> list[tuple[str, str]]:
    from core.models import User

    rows = session.execute(select(User.id, User.name).where(User.is_active).order_by(User.name))
    return [(str(i), name) for i, name in rows]


def _stage_choices(session: Any) -> list[tuple[str, str]]:
    return pipeline.all_stage_choices(session)


def _lines_tab(ctx: Any, order: Order) -> str:
    rows = ctx.session.execute(
        select(OrderLine, Product.sku, Product.name)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.id)
    ).all()
    return ctx.render("operational/order_lines.html", lines=rows, order=order)


def resources() -> list[Any]:
    """The module's resources and their list, form, detail and kanban views."""
    money = "money"
    complete = Action(
        "complete", N_("Mark done"), _complete, "operational.activity:update", bulk=True
    )
    return [
        # products
        Resource(
            "product",
            Product,
            N_("Product"),
            N_("Products"),
            title_field="name",
            search=lambda text, crm: Product.name.startswith(text) | (Product.sku == text),
            permission_prefix="operational.product",
        ),
        ListView(
            "product",
            [
                Column("sku", N_("SKU"), sortable=True, link=True),
                Column("name", N_("Name"), sortable=True, link=True),
                Column("category", N_("Category")),
                Column("price_minor", N_("Price"), widget=money),
                Column("cost_minor", N_("Cost"), widget=money),
                Column("active", N_("Active")),
            ],
            default_sort="name",
            filters=[Filter("category", N_("Category"))],
            search_label=N_("Name or SKU"),
            search_sort="name",
        ),
        FormView(
            "product",
            [
                Field("sku", N_("SKU")),
                Field("name", N_("Name")),
                Field("category", N_("Category")),
                Field("price_minor", N_("Price")),
                Field("cost_minor", N_("Cost")),
                Field("currency", N_("Currency (ISO code)"), max_length=3),
                Field("active", N_("Active")),
                Field("upgrade_to_id", N_("Upgrade to (product id)"), widget="number"),
            ],
        ),
        DetailView(
            "product",
            [
                Field("sku", N_("SKU")),
                Field("category", N_("Category")),
                Field("price_minor", N_("Price")),
                Field("cost_minor", N_("Cost")),
                Field("active", N_("Active")),
                Field("upgrade_to_id", N_("Upgrade to"), widget="reference"),
            ],
        ),
        # orders
        Resource(
            "order",
            Order,
            N_("Order"),
            N_("Orders"),
            title_field="ref",
            owner_column="owner_id",
            customer_column="customer_id",
            search=lambda text, crm: Order.ref.startswith(text),
            permission_prefix="operational.order",
        ),
        ListView(
            "order",
            [
                Column("ref", N_("Reference"), sortable=True, link=True),
                Column("customer_id", N_("Customer")),
                Column("placed_at", N_("Placed")),
                Column("channel", N_("Channel")),
                Column("status", N_("Status"), choices=_labelled(ORDER_STATUSES, STATUS_LABELS)),
                Column("total_minor", N_("Total"), widget=money),
            ],
            filters=[
                Filter("status", N_("Status"), _labelled(ORDER_STATUSES, STATUS_LABELS)),
                Filter("customer_id", N_("Customer id"), apply=_int_filter(Order.customer_id)),
            ],
            search_label=N_("Order reference"),
            search_sort="ref",
        ),
        DetailView(
            "order",
            [
                Field("customer_id", N_("Customer"), widget="reference"),
                Field("placed_at", N_("Placed")),
                Field("channel", N_("Channel")),
                Field("status", N_("Status"), choices=_labelled(ORDER_STATUSES, STATUS_LABELS)),
                Field("total_minor", N_("Total")),
                Field("cost_minor", N_("Cost")),
            ],
            tabs=[Tab("lines", N_("Lines"), render=_lines_tab)],
        ),
        # pipeline
        Resource(
            "opportunity",
            Opportunity,
            N_("Opportunity"),
            N_("Pipeline"),
            title_field="title",
            owner_column="owner_id",
            customer_column="customer_id",
            search=lambda text, crm: Opportunity.title.startswith(text),
            create=_create_opportunity,
            update=_update_opportunity,
            permission_prefix="operational.opportunity",
        ),
        ListView(
            "opportunity",
            [
                Column("title", N_("Title"), sortable=True, link=True),
                Column("customer_id", N_("Customer")),
                Column("stage", N_("Stage")),
                Column("expected_revenue_minor", N_("Expected revenue"), widget=money),
                Column("probability", N_("Probability %")),
                Column("expected_close", N_("Expected close")),
                Column("owner_id", N_("Owner")),
            ],
            filters=[
                Filter("stage", N_("Stage"), _stage_choices),
                Filter("owner_id", N_("Owner"), _users, apply=_int_filter(Opportunity.owner_id)),
            ],
            search_label=N_("Title"),
            search_sort="title",
        ),
        FormView(
            "opportunity",
            [
                Field("title", N_("Title")),
                Field("customer_id", N_("Customer id"), widget="number", required=True),
                Field("stage", N_("Stage"), choices=_stage_choices),
                Field("expected_revenue_minor", N_("Expected revenue")),
                Field("probability", N_("Probability % (empty: the stage's)"), required=False),
                Field("expected_close", N_("Expected close")),
                Field(
                    "owner_id",
                    N_("Owner"),
                    widget="select",
                    choices=_users,
                    permission="customer:assign",
                ),
                Field(
                    "lost_reason_id",
                    N_("Lost reason"),
                    widget="select",
                    choices=pipeline.lost_reasons,
                ),
            ],
        ),
        DetailView(
            "opportunity",
            [
                Field("customer_id", N_("Customer"), widget="reference"),
                Field("stage", N_("Stage")),
                Field("expected_revenue_minor", N_("Expected revenue")),
                Field("probability", N_("Probability %")),
                Field("expected_close", N_("Expected close")),
                Field("owner_id", N_("Owner"), widget="reference"),
                Field("lost_reason_id", N_("Lost reason"), widget="reference"),
                Field("closed_at", N_("Closed")),
            ],
        ),
        KanbanView(
            "opportunity",
            "stage",
            _stage_choices,
            card_fields=["expected_revenue_minor", "probability"],
        ),
        # activities
        Resource(
            "activity",
            Activity,
            N_("Activity"),
            N_("Activities"),
            title_field="subject",
            owner_column="user_id",
            customer_column="customer_id",
            create=_create_activity,
            search=lambda text, crm: Activity.subject.startswith(text),
            permission_prefix="operational.activity",
        ),
        ListView(
            "activity",
            [
                Column("subject", N_("Subject"), link=True),
                Column("kind", N_("Kind"), choices=_labelled(ACTIVITY_KINDS, KIND_LABELS)),
                Column("due_at", N_("Due"), sortable=True),
                Column("customer_id", N_("Customer")),
                Column("user_id", N_("For")),
                Column("done_at", N_("Done")),
            ],
            filters=[
                Filter(
                    "state",
                    N_("State"),
                    [("open", N_("Open")), ("overdue", N_("Overdue")), ("done", N_("Done"))],
                    apply=_activity_state,
                    default="open",
                ),
                Filter("user_id", N_("For"), _users, apply=_int_filter(Activity.user_id)),
            ],
            bulk_actions=[complete],
        ),
        FormView(
            "activity",
            [
                Field("kind", N_("Kind"), choices=_labelled(ACTIVITY_KINDS, KIND_LABELS)),
                Field("subject", N_("Subject")),
                Field("due_at", N_("Due")),
                Field("remind_at", N_("Remind at")),
                Field("customer_id", N_("Customer id"), widget="number"),
                Field("opportunity_id", N_("Opportunity id"), widget="number"),
                Field("user_id", N_("For"), widget="select", choices=_users),
                Field("note", N_("Note")),
            ],
        ),
        DetailView(
            "activity",
            [
                Field("kind", N_("Kind"), choices=_labelled(ACTIVITY_KINDS, KIND_LABELS)),
                Field("due_at", N_("Due")),
                Field("customer_id", N_("Customer"), widget="reference"),
                Field("opportunity_id", N_("Opportunity"), widget="reference"),
                Field("user_id", N_("For"), widget="reference"),
                Field("note", N_("Note")),
                Field("done_at", N_("Done")),
            ],
            actions=[replace(complete, when=lambda a: a.done_at is None)],
        ),
        # interactions
        Resource(
            "interaction",
            Interaction,
            N_("Interaction"),
            N_("Interactions"),
            title_field="subject",
            owner_column="user_id",
            customer_column="customer_id",
            create=_create_interaction,
            permission_prefix="operational.interaction",
        ),
        ListView(
            "interaction",
            [
                Column("subject", N_("Subject"), link=True),
                Column("kind", N_("Kind"), choices=_labelled(INTERACTION_KINDS, KIND_LABELS)),
                Column("channel", N_("Channel"), choices=_labelled(CHANNELS, CHANNEL_LABELS)),
                Column("direction", N_("Direction"), choices=_labelled(DIRECTIONS, STATUS_LABELS)),
                Column("customer_id", N_("Customer")),
                Column("occurred_at", N_("When")),
            ],
            filters=[Filter("channel", N_("Channel"), _labelled(CHANNELS, CHANNEL_LABELS))],
        ),
        FormView(
            "interaction",
            [
                Field("customer_id", N_("Customer id"), widget="number"),
                Field("kind", N_("Kind"), choices=_labelled(INTERACTION_KINDS, KIND_LABELS)),
                Field("channel", N_("Channel"), choices=_labelled(CHANNELS, CHANNEL_LABELS)),
                Field("direction", N_("Direction"), choices=_labelled(DIRECTIONS, STATUS_LABELS)),
                Field("subject", N_("Subject")),
                Field("body", N_("What was said")),
                Field("occurred_at", N_("When (empty: now)"), required=False),
            ],
        ),
        DetailView(
            "interaction",
            [
                Field("customer_id", N_("Customer"), widget="reference"),
                Field("kind", N_("Kind"), choices=_labelled(INTERACTION_KINDS, KIND_LABELS)),
                Field("channel", N_("Channel"), choices=_labelled(CHANNELS, CHANNEL_LABELS)),
                Field("direction", N_("Direction"), choices=_labelled(DIRECTIONS, STATUS_LABELS)),
                Field("occurred_at", N_("When")),
                Field("user_id", N_("Who"), widget="reference"),
                Field("body", N_("What was said")),
                Field("source", N_("Logged by")),
            ],
        ),
        # mailings
        Resource(
            "mail_template",
            MailTemplate,
            N_("Mail template"),
            N_("Mail templates"),
            title_field="name",
            create=_create_template,
            update=_update_template,
            permission_prefix="operational.mailing",
        ),
        ListView(
            "mail_template",
            [
                Column("name", N_("Name"), sortable=True, link=True),
                Column("subject", N_("Subject")),
            ],
            default_sort="name",
        ),
        FormView(
            "mail_template",
            [
                Field("name", N_("Name")),
                Field("subject", N_("Subject")),
                Field(
                    "body",
                    N_("Body"),
                    help=N_(
                        "Plain text. Use {{ display_name }}, {{ given_name }}, {{ company }} and "
                        "{{ unsubscribe_url }}."
                    ),
                ),
            ],
        ),
        DetailView("mail_template", [Field("subject", N_("Subject")), Field("body", N_("Body"))]),
        Resource(
            "mailing",
            Mailing,
            N_("Mailing"),
            N_("Mailings"),
            title_field="name",
            owner_column="created_by",
            create=_create_mailing,
            permission_prefix="operational.mailing",
        ),
        ListView(
            "mailing",
            [
                Column("name", N_("Name"), link=True),
                Column("template_id", N_("Template")),
                Column("status", N_("Status")),
                Column("scheduled_at", N_("Send at")),
            ],
        ),
        FormView(
            "mailing",
            [
                Field("name", N_("Name"), max_length=200),
                Field("template_id", N_("Template"), widget="select", choices=_templates),
                Field("scheduled_at", N_("Send at (UTC)"), widget="datetime", required=False),
                Field("audience_tag", N_("Customers tagged"), max_length=50),
                Field("audience_country", N_("Customers in country (two letters)"), max_length=2),
            ],
        ),
        DetailView(
            "mailing",
            [
                Field("template_id", N_("Template"), widget="reference"),
                Field("status", N_("Status")),
                Field("scheduled_at", N_("Send at")),
                Field("audience", N_("Audience")),
            ],
            tabs=[Tab("recipients", N_("Recipients"), render=_recipients_tab)],
            actions=[
                Action(
                    "schedule",
                    N_("Schedule"),
                    _schedule,
                    "operational.mailing:send",
                    N_("Queue this mailing for its audience?"),
                    when=lambda m: m.status == "draft",
                )
            ],
        ),
        # tickets (the service queue)
        Resource(
            "ticket",
            Ticket,
            N_("Ticket"),
            N_("Tickets"),
            title_field="subject",
            owner_column="assignee_id",
            customer_column="customer_id",
            search=lambda text, crm: Ticket.subject.startswith(text),
            create=_create_ticket,
            update=_update_ticket,
            permission_prefix="operational.ticket",
        ),
        ListView(
            "ticket",
            [
                Column("subject", N_("Subject"), sortable=True, link=True),
                Column("customer_id", N_("Customer")),
                Column(
                    "priority", N_("Priority"), choices=_labelled(TICKET_PRIORITIES, STATUS_LABELS)
                ),
                Column("status", N_("Status"), choices=_labelled(TICKET_STATUSES, STATUS_LABELS)),
                Column("assignee_id", N_("Assignee")),
                Column("resolution_due", N_("Resolve by")),
            ],
            filters=[
                Filter("status", N_("Status"), _labelled(TICKET_STATUSES, STATUS_LABELS)),
                Filter("priority", N_("Priority"), _labelled(TICKET_PRIORITIES, STATUS_LABELS)),
                Filter(
                    "assignee_id", N_("Assignee"), _users, apply=_int_filter(Ticket.assignee_id)
                ),
            ],
            search_label=N_("Subject"),
            search_sort="subject",
        ),
        FormView(
            "ticket",
            [
                Field(
                    "customer_id",
                    N_("Customer id"),
                    widget="number",
                    required=True,
                    readonly=lambda ticket, principal: ticket is not None,
                ),
                Field("subject", N_("Subject")),
                Field("description", N_("Description")),
                Field(
                    "priority", N_("Priority"), choices=_labelled(TICKET_PRIORITIES, STATUS_LABELS)
                ),
                Field(
                    "status",
                    N_("Status"),
                    choices=_labelled(TICKET_STATUSES, STATUS_LABELS),
                    readonly=lambda ticket, principal: ticket is None,
                    help=N_("Resolve with the Resolve button: it makes the survey link."),
                ),
                Field("assignee_id", N_("Assignee"), widget="select", choices=_users),
            ],
        ),
        DetailView(
            "ticket",
            [
                Field("customer_id", N_("Customer"), widget="reference"),
                Field(
                    "priority", N_("Priority"), choices=_labelled(TICKET_PRIORITIES, STATUS_LABELS)
                ),
                Field("status", N_("Status"), choices=_labelled(TICKET_STATUSES, STATUS_LABELS)),
                Field("assignee_id", N_("Assignee"), widget="reference"),
                Field("description", N_("Description")),
                Field("first_response_due", N_("First response by")),
                Field("first_responded_at", N_("First response")),
                Field("resolution_due", N_("Resolve by")),
                Field("resolved_at", N_("Resolved")),
            ],
            actions=[
                Action(
                    "resolve",
                    N_("Resolve"),
                    _resolve,
                    "operational.ticket:update",
                    when=lambda t: t.status not in ("resolved", "closed"),
                )
            ],
        ),
        KanbanView(
            "ticket",
            "status",
            _labelled(TICKET_STATUSES, STATUS_LABELS),
            card_fields=["priority"],
        ),
    ]


def _int_filter(column: Any) -> Any:
    def apply(value: str) -> Any:
        return column == int(value) if value.isdigit() else None

    return apply


def _activity_state(value: str) -> Any:
    if value == "done":
        return Activity.done_at.is_not(None)
    if value == "overdue":
        return Activity.done_at.is_(None) & (Activity.due_at < utcnow())
    if value == "open":
        return Activity.done_at.is_(None)
    return None


# --- customer 360 -----------------------------------------------------------------------------


def _summary_slot(ctx: Any, customer_id: int) -> str:
    session = ctx.session
    orders = session.execute(
        select(
            func.count(), func.coalesce(func.sum(Order.total_minor), 0), func.max(Order.placed_at)
        ).where(Order.customer_id == customer_id, Order.status.not_in(("cancelled", "returned")))
    ).one()
    open_deals = session.execute(
        select(func.count(), func.coalesce(func.sum(Opportunity.expected_revenue_minor), 0)).where(
            Opportunity.customer_id == customer_id, Opportunity.closed_at.is_(None)
        )
    ).one()
    open_tickets = session.scalar(
        select(func.count()).where(
            Ticket.customer_id == customer_id, Ticket.status.not_in(("resolved", "closed"))
        )
    )
    last_contact = session.execute(
        select(Interaction.channel, func.max(Interaction.occurred_at))
        .where(Interaction.customer_id == customer_id)
        .group_by(Interaction.channel)
    ).all()
    from plugins.operational import surveys

    return ctx.render(
        "operational/summary.html",
        satisfaction=surveys.customer_satisfaction(session, customer_id),
        orders=orders,
        open_deals=open_deals,
        open_tickets=open_tickets,
        last_contact=sorted(last_contact, key=lambda r: r[1], reverse=True),
        channel_labels=CHANNEL_LABELS,
        currency=ctx.crm.settings.default_currency,
    )


def _timeline_slot(ctx: Any, customer_id: int) -> str:
    from plugins.operational import interactions

    channel = ctx.request.query_params.get("channel") or None
    if channel not in CHANNELS:
        channel = None
    items = interactions.timeline(ctx.session, customer_id, channel, limit=30)
    return ctx.render(
        "operational/timeline.html",
        items=items,
        customer_id=customer_id,
        channel=channel,
        channel_labels=CHANNEL_LABELS,
        kind_labels=KIND_LABELS,
        can_log=ctx.can("operational.interaction:create"),
    )


def _pipeline_slot(ctx: Any, customer_id: int) -> str:
    deals = ctx.session.scalars(
        select(Opportunity)
        .where(Opportunity.customer_id == customer_id)
        .order_by(Opportunity.closed_at.is_not(None), Opportunity.id.desc())
        .limit(10)
    ).all()
    tickets = ctx.session.scalars(
        select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()).limit(10)
    ).all()
    return ctx.render(
        "operational/deals_tickets.html",
        deals=deals,
        tickets=tickets,
        status_labels=STATUS_LABELS,
        currency=ctx.crm.settings.default_currency,
    )


def slots() -> list[Slot]:
    """The module's panels on the customer 360 page."""
    return [
        Slot(
            "operational.summary",
            N_("What we know"),
            _summary_slot,
            "operational.order:read",
            order=5,
        ),
        Slot(
            "operational.timeline",
            N_("Timeline"),
            _timeline_slot,
            "operational.interaction:read",
            order=15,
        ),
        Slot(
            "operational.pipeline",
            N_("Deals and tickets"),
            _pipeline_slot,
            "operational.opportunity:read",
            order=25,
        ),
    ]


# --- dashboard --------------------------------------------------------------------------------


def _weighted_pipeline(ctx: Any) -> int:
    from core import records

    query = select(Opportunity).where(Opportunity.closed_at.is_(None))
    rule = records.visible(
        ctx.crm,
        ctx.principal.user,
        "operational.opportunity",
        owner_column=Opportunity.owner_id,
        customer_column=Opportunity.customer_id,
    )
    if rule is not None:
        query = query.where(rule)
    return sum(pipeline.weighted_minor(o) for o in ctx.session.scalars(query))


def _overdue(ctx: Any) -> int:
    return len(activities.overdue(ctx.session, utcnow(), ctx.principal.user.id))


def _revenue_by_month(ctx: Any) -> dict[str, Any]:
    from core import records

    since = utcnow() - dt.timedelta(days=365)
    query = select(Order.placed_at, Order.total_minor).where(
        Order.placed_at >= since, Order.status.not_in(("cancelled", "returned"))
    )
    rule = records.visible(
        ctx.crm,
        ctx.principal.user,
        "operational.order",
        owner_column=Order.owner_id,
        customer_column=Order.customer_id,
    )
    if rule is not None:
        query = query.where(rule)
    rows = ctx.session.execute(query).all()
    months: dict[str, int] = {}
    for placed_at, total in rows:
        key = placed_at.strftime("%Y-%m")
        months[key] = months.get(key, 0) + total
    labels = sorted(months)
    return {
        "labels": labels,
        "series": [{"label": ctx.gettext(N_("Revenue")), "data": [months[m] for m in labels]}],
    }


def widgets() -> list[Widget]:
    """The module's dashboard widgets."""
    return [
        Widget(
            "operational.pipeline",
            N_("Weighted open pipeline"),
            _weighted_pipeline,
            permission="operational.opportunity:read",
            order=30,
            kind="money",
            note=N_("Expected revenue times probability, over open opportunities you may see."),
        ),
        Widget(
            "operational.overdue",
            N_("My overdue activities"),
            _overdue,
            permission="operational.activity:read",
            order=35,
            note=N_("Your activities past their due time and not done."),
        ),
        Widget(
            "operational.revenue",
            N_("Revenue by month"),
            _revenue_by_month,
            kind="chart",
            chart="bar",
            permission="operational.report:read",
            order=40,
            note=N_(
                "Totals of the orders you may see over the last twelve months, without"
                " cancelled and returned orders."
            ),
        ),
    ]


def menu() -> list[MenuItem]:
    """The module's navigation entries."""
    return [
        MenuItem(
            N_("Pipeline"), "/ui/opportunity/kanban", "operational.opportunity:read", order=20
        ),
        MenuItem(N_("My agenda"), "/operational/agenda", "operational.activity:read", order=24),
        MenuItem(N_("Tickets"), "/ui/ticket", "operational.ticket:read", order=30),
        MenuItem(N_("Orders"), "/ui/order", "operational.order:read", order=35),
        MenuItem(N_("Products"), "/ui/product", "operational.product:read", order=40),
        MenuItem(N_("Interactions"), "/ui/interaction", "operational.interaction:read", order=45),
        MenuItem(N_("Mailings"), "/ui/mailing", "operational.mailing:read", order=48),
        MenuItem(N_("Reports"), "/operational/reports", "operational.report:read", order=50),
    ]
