"""The mass-assignment table: for every write operation with a body, who sends it, a valid body
(or the one the world's builders registered), and what each field that could hand over
something the caller may not choose is tried with.

An operation is keyed by its method and path template as the route table spells it. Fields:

- ``attack``: declared fields tried, one at a time, with a value that is not the caller's to
  choose, by kind: ``user`` (a user of the other team), ``team`` (the other team),
  ``customer`` / ``opportunity`` / ``ticket`` / ``order`` (a record the caller may not see),
  ``message`` (a message on a record the caller may not see), ``record`` (a record of the
  body's ``record_type`` the caller may not see);
- ``chooses``: declared fields that look privileged but are the caller's to choose, and why;
- ``body``: a valid body when the world registered none (or one unfit for this test); a
  callable gets a :class:`Context`;
- ``persona``: who sends it (by default the least privileged persona allowed: owner, manager,
  then admin).

Every field of :data:`PRIVILEGED` that an operation declares must be in ``attack`` or in
``chooses``: a new field that hands over ownership, a team or a reference fails the test until
someone decides which it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

#: Field names that, when an operation declares them, must be attacked or justified.
PRIVILEGED = frozenset(
    {
        "id",
        "owner_id",
        "team_id",
        "user_id",
        "assignee_id",
        "lead_id",
        "created_by",
        "created_by_id",
        "customer_id",
        "company_id",
        "other_id",
        "record_id",
        "opportunity_id",
        "ticket_id",
        "order_id",
        "parent_id",
        "to_team_id",
        "is_admin",
        "role",
        "roles",
        "permissions",
        "module",
        "created_at",
        "updated_at",
    }
)

#: Fields no operation declares, sent together in every body: each must be refused (422) or
#: leave no trace in the database.
UNDECLARED = {
    "id": 987654,
    "is_admin": True,
    "role": "admin",
    "roles": ["admin"],
    "permissions": ["user:update", "module:manage"],
    "module": "core",
    "created_at": "2000-01-02T03:04:05+00:00",
    "updated_at": "2000-01-02T03:04:05+00:00",
    "created_by": "RIVAL",
    "created_by_id": "RIVAL",
    "owner_id": "RIVAL",
    "team_id": "BETA",
    "version": 987,
}


@dataclass
class Context:
    """What a body is made from: the world, the persona sending it, the path's values."""

    world: Any
    persona: str
    path: dict[str, Any] = field(default_factory=dict)

    def version(self, table: str, record_id: Any) -> int:
        """The current ``version`` of row ``record_id`` of ``table``."""
        found = {t.name: t for t in self.world.tables()}[table]
        with self.world.crm.db.engine.connect() as conn:
            return conn.execute(select(found.c.version).where(found.c.id == record_id)).scalar()


@dataclass
class Op:
    """How one operation is tried (see the module docstring)."""

    attack: dict[str, str] = field(default_factory=dict)
    chooses: dict[str, str] = field(default_factory=dict)
    body: Callable[[Context], dict[str, Any]] | dict[str, Any] | None = None
    persona: str | None = None


def _soon(days: int = 3) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def _versioned(table: str, param: str, **rest: Any) -> Callable[[Context], dict[str, Any]]:
    """A body holding the current version of the path's record, and ``rest``."""

    def make(ctx: Context) -> dict[str, Any]:
        return {"version": ctx.version(table, ctx.path[param]), **rest}

    return make


API = "/api"
OPS = "/api/operational"
ANA = "/api/analytical"
COL = "/api/collaborative"
SMART = "/api/smart_sales"
ASSIGN = "giving records to others needs customer:assign"

TABLE: dict[tuple[str, str], Op] = {
    ("POST", "/api/auth/login"): Op(persona="anonymous"),
    # --- customers
    ("POST", "/api/customers"): Op(
        attack={"owner_id": "user", "company_id": "customer"},
        body={"kind": "person", "display_name": "Mass Assigned"},
    ),
    ("PATCH", "/api/customers/{customer_id}"): Op(
        attack={"owner_id": "user", "company_id": "customer"},
        body=_versioned("core_customer", "customer_id", address="12 Trang Tien"),
    ),
    ("POST", "/api/customers/{customer_id}/identities"): Op(
        body={"channel": "email", "value": "mass.assigned@example.org"}
    ),
    ("POST", "/api/customers/{customer_id}/merge"): Op(attack={"other_id": "customer"}),
    # --- operational
    ("POST", f"{OPS}/products"): Op(body={"sku": "MASS-1", "name": "Mass product"}),
    ("PATCH", f"{OPS}/products/{{product_id}}"): Op(
        body=_versioned("operational_product", "product_id", name="Renamed product")
    ),
    ("POST", f"{OPS}/orders"): Op(attack={"customer_id": "customer"}),
    ("PATCH", f"{OPS}/orders/{{order_id}}"): Op(
        body=_versioned("operational_order", "order_id", status="paid")
    ),
    ("POST", f"{OPS}/opportunities"): Op(
        attack={"customer_id": "customer", "owner_id": "user", "team_id": "team"}
    ),
    ("PATCH", f"{OPS}/opportunities/{{opportunity_id}}"): Op(
        attack={"owner_id": "user"},
        body=_versioned("operational_opportunity", "opportunity_id", title="Renamed deal"),
    ),
    ("POST", f"{OPS}/activities"): Op(
        attack={"customer_id": "customer", "opportunity_id": "opportunity", "user_id": "user"}
    ),
    ("POST", f"{OPS}/activities/{{activity_id}}/complete"): Op(body={"outcome": "Done"}),
    ("POST", f"{OPS}/interactions"): Op(
        attack={"customer_id": "customer", "opportunity_id": "opportunity", "ticket_id": "ticket"}
    ),
    ("POST", f"{OPS}/mail-templates"): Op(
        body={"name": "Mass template", "subject": "Hello", "body": "Hello {{ display_name }}"}
    ),
    ("PATCH", f"{OPS}/mail-templates/{{template_id}}"): Op(
        body=_versioned("operational_mail_template", "template_id", subject="Hi")
    ),
    ("POST", f"{OPS}/mail-templates/{{template_id}}/preview"): Op(
        attack={"customer_id": "customer"}
    ),
    ("POST", f"{OPS}/mailings"): Op(),
    ("PATCH", f"{OPS}/mailings/{{mailing_id}}"): Op(
        body=_versioned("operational_mailing", "mailing_id", name="Renamed mailing")
    ),
    ("POST", f"{OPS}/mailings/{{mailing_id}}/schedule"): Op(
        body=_versioned("operational_mailing", "mailing_id", scheduled_at=_soon())
    ),
    ("POST", f"{OPS}/mailings/{{mailing_id}}/unschedule"): Op(
        body=_versioned("operational_mailing", "mailing_id")
    ),
    ("POST", f"{OPS}/replies"): Op(),
    ("POST", f"{OPS}/tickets"): Op(
        attack={"customer_id": "customer", "assignee_id": "user", "team_id": "team"}
    ),
    ("PATCH", f"{OPS}/tickets/{{ticket_id}}"): Op(
        attack={"assignee_id": "user", "team_id": "team"},
        body=_versioned("operational_ticket", "ticket_id", subject="Renamed ticket"),
    ),
    ("POST", f"{OPS}/tickets/{{ticket_id}}/respond"): Op(),
    ("POST", f"{OPS}/tickets/{{ticket_id}}/resolve"): Op(),
    ("PUT", f"{OPS}/sla-policies/{{priority}}"): Op(),
    # --- analytical
    ("POST", f"{ANA}/segments"): Op(),
    ("POST", f"{ANA}/segments/preview"): Op(),
    ("PATCH", f"{ANA}/segments/{{segment_id}}"): Op(
        body=_versioned("analytical_segment", "segment_id", description="Changed")
    ),
    ("POST", f"{ANA}/campaigns"): Op(),
    ("POST", f"{ANA}/campaigns/{{campaign_id}}/freeze"): Op(),
    ("POST", f"{ANA}/campaigns/{{campaign_id}}/send"): Op(
        body=lambda ctx: {
            "version": ctx.version("analytical_campaign", ctx.path["campaign_id"]),
            "template_id": ctx.world.refs("template_id", OPS)[0].value,
        }
    ),
    # --- collaborative
    ("POST", f"{COL}/messages"): Op(attack={"record_id": "record", "parent_id": "message"}),
    ("PATCH", f"{COL}/messages/{{message_id}}"): Op(),
    ("PUT", f"{COL}/preferences"): Op(),
    ("PUT", f"{COL}/teams/{{team_id}}"): Op(
        chooses={"lead_id": "naming a department's lead is what the route is for"}
    ),
    ("POST", f"{COL}/teams/{{team_id}}/members"): Op(
        chooses={
            "user_id": "adding a person to a department is what the route is for",
            "role": "their role in the department (member, lead), not a role of the CRM",
        }
    ),
    ("PUT", f"{COL}/account-teams/{{customer_id}}"): Op(
        chooses={"team_id": "giving a visible customer an account team is what it is for"}
    ),
    ("POST", f"{COL}/handoffs"): Op(
        attack={"record_id": "record"},
        chooses={"to_team_id": "the team to hand over to is the caller's choice"},
    ),
    ("POST", f"{COL}/handoffs/{{handoff_id}}/accept"): Op(),
    ("POST", f"{COL}/handoffs/{{handoff_id}}/return"): Op(),
    ("POST", f"{COL}/handoffs/{{handoff_id}}/cancel"): Op(),
    ("POST", f"{COL}/partners"): Op(),
    ("PATCH", f"{COL}/partners/{{partner_id}}"): Op(),
    ("POST", f"{COL}/partners/{{partner_id}}/contacts"): Op(),
    ("PATCH", f"{COL}/partners/{{partner_id}}/contacts/{{contact_id}}"): Op(),
    ("POST", f"{COL}/partners/{{partner_id}}/links"): Op(attack={"record_id": "record"}),
    ("POST", f"{COL}/shares"): Op(
        attack={"customer_id": "customer"},
        chooses={"user_id": "the person a visible customer is shared with is the caller's"},
    ),
    # --- smart sales
    ("POST", f"{SMART}/alerts/{{alert_id}}/act"): Op(),
    ("POST", f"{SMART}/alerts/{{alert_id}}/dismiss"): Op(),
    ("POST", f"{SMART}/rules/{{key}}/mute"): Op(),
    ("POST", f"{SMART}/runs"): Op(),
}
