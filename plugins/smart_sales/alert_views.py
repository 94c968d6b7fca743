"""Alerts in the generated UI: the read-only ``alert`` resource (list with filters, search,
export; a detail page), the "Alerts" menu entry with its badge, the customer 360 panel "Next
best offers", and the dashboard's "My open alerts".

The ``alert`` resource names its customer column, so the generator puts the customer's record
rule inside every list, search, count and export query (``core.ui.data.visible_condition``),
the same rule as ``alerts.visible_condition``: a salesperson never sees an alert on a customer
they may not see. It has no form: alerts change through the inbox's act and dismiss only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select

from core.i18n import N_
from core.ui import (
    Column,
    DetailView,
    Field,
    Filter,
    ListView,
    MenuItem,
    Resource,
    Slot,
    Tab,
    Widget,
)

READ = "smart_sales.alert:read"
INBOX = "/smart_sales/inbox"
BADGE = "/smart_sales/inbox/count"
SLOT_ID = "smart_sales.next_best_offers"
TEMPLATES = "smart_sales/"


def _labels(name: str) -> list[tuple[str, str]]:
    from plugins.smart_sales import alerts

    return list(getattr(alerts, name).items())


def _search(text: str, crm: Any) -> Any:
    """Alerts of the customers whose name starts with ``text`` (or with that e-mail/phone)."""
    from core.customers.models import Customer
    from core.customers.views import search
    from plugins.smart_sales.models import Alert

    condition = search(text, crm)
    if condition is None:
        return None
    return Alert.customer_id.in_(select(Customer.id).where(condition))


def _owner_choices(session: Any) -> list[tuple[str, str]]:
    """The people who own alerts, by name."""
    from core.models import User
    from plugins.smart_sales.models import Alert

    owners = select(Alert.owner_id).where(Alert.owner_id.is_not(None)).distinct()
    rows = session.execute(
        select(User.id, User.name, User.email).where(User.id.in_(owners)).order_by(User.name)
    )
    return [(str(uid), name or email) for uid, name, email in rows]


def _owner_filter(value: str) -> Any:
    from plugins.smart_sales.models import Alert

    return Alert.owner_id == int(value) if value.isdigit() else false()


def _reason_tab(ctx: Any, record: Any) -> str:
    """The alert's reason in plain words and a link to its page (where it is acted on)."""
    from plugins.smart_sales import alerts

    products = alerts.products_for(ctx.session, [record])
    return ctx.render(
        TEMPLATES + "alert_reason_tab.html",
        a=record,
        headline=alerts.headline(record, products),
        reason=alerts.describe(record, products),
    )


def resources() -> list[Any]:
    """The read-only ``alert`` resource, its list and its detail page."""
    from plugins.smart_sales.models import Alert

    kinds, states = _labels("KIND_LABELS"), _labels("STATE_LABELS")
    reasons = _labels("REASON_LABELS")
    tiers = [("A", "A"), ("B", "B"), ("C", "C")]
    return [
        Resource(
            "alert",
            Alert,
            N_("Sales alert"),
            N_("Sales alerts"),
            title_field="id",
            customer_column="customer_id",
            search=_search,
            permission_prefix="smart_sales.alert",
        ),
        ListView(
            "alert",
            [
                Column("id", N_("Alert"), sortable=True, link=True),
                Column("customer_id", N_("Customer"), widget="reference"),
                Column("kind", N_("Kind"), choices=kinds),
                Column("product_id", N_("Product"), widget="reference"),
                Column("state", N_("State"), choices=states),
                Column("value_tier", N_("Tier")),
                Column("expected_value_minor", N_("Expected value"), widget="money"),
                Column("owner_id", N_("Owner"), widget="reference"),
                Column("raised_at", N_("Raised"), sortable=True),
                Column("expires_at", N_("Expires"), sortable=True),
            ],
            default_sort="-raised_at",
            filters=[
                Filter("kind", N_("Kind"), choices=kinds),
                Filter("state", N_("State"), choices=states),
                Filter("value_tier", N_("Tier"), choices=tiers),
                Filter("owner_id", N_("Owner"), choices=_owner_choices, apply=_owner_filter),
            ],
            search_label=N_("Customer name, e-mail or phone"),
        ),
        DetailView(
            "alert",
            [
                Field("customer_id", N_("Customer"), widget="reference"),
                Field("kind", N_("Kind"), choices=kinds),
                Field("product_id", N_("Product"), widget="reference"),
                Field("from_product_id", N_("Upgrade from"), widget="reference"),
                Field("state", N_("State"), choices=states),
                Field("value_tier", N_("Tier")),
                Field("probability", N_("Probability")),
                Field("expected_value_minor", N_("Expected value"), widget="money"),
                Field("price_minor", N_("Price"), widget="money"),
                Field("margin_minor", N_("Margin"), widget="money"),
                Field("owner_id", N_("Owner"), widget="reference"),
                Field("raised_at", N_("Raised")),
                Field("expires_at", N_("Expires")),
                Field("acted_at", N_("Acted on")),
                Field("dismiss_reason", N_("Dismissal reason"), choices=reasons),
                Field("dismiss_note", N_("Dismissal note")),
                Field("converted_order_id", N_("Converted by order"), widget="reference"),
                Field("credited_minor", N_("Credited"), widget="money"),
            ],
            tabs=[Tab("reason", N_("Why"), render=_reason_tab)],
        ),
    ]


def menu() -> list[MenuItem]:
    """ "Alerts", after "Customers", with the count of my alerts waiting for action."""
    return [MenuItem(N_("Alerts"), INBOX, READ, order=15, badge=BADGE)]


def offers_body(ctx: Any, customer_id: int, errors: dict[int, str] | None = None) -> str:
    """The "Next best offers" panel of a customer (whose visibility the caller checked): the
    top ``offers_shown`` open offers by expected value with their reasons, act and dismiss, and
    the open churn alert."""
    from core.web.ui.context import csrf_token
    from plugins.smart_sales import alerts
    from plugins.smart_sales.alerts_api import open_churn
    from plugins.smart_sales.inbox_pages import rows_context

    session = ctx.session
    offers = alerts.next_best_offers(ctx.crm, session, customer_id)
    churn = open_churn(session, customer_id)
    shown = [*offers, *([churn] if churn else [])]
    context = rows_context(ctx, session, shown)
    context["errors"] = errors or {}
    return ctx.render(
        TEMPLATES + "offers_slot.html",
        customer_id=customer_id,
        offers=offers,
        churn=churn,
        view="offer",
        csrf=csrf_token(ctx.request),
        **context,
    )


def _offers_slot(ctx: Any, customer_id: int) -> str:
    return offers_body(ctx, customer_id)


def slots() -> list[Slot]:
    """ "Next best offers" on the customer 360 page, high up (after the summary)."""
    return [Slot(SLOT_ID, N_("Next best offers"), _offers_slot, READ, order=8)]


def _my_open(ctx: Any) -> int:
    from plugins.smart_sales import alerts

    return alerts.open_count(ctx.crm, ctx.session, ctx.principal.user)


def widgets() -> list[Widget]:
    """The number of my open alerts."""
    return [
        Widget(
            "smart_sales.my_alerts",
            N_("My open alerts"),
            _my_open,
            permission=READ,
            order=20,
            note=N_(
                "Alerts you own on customers you may see that are new, seen or acted on and "
                "not yet converted, dismissed or expired."
            ),
        )
    ]
