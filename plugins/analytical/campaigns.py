"""Targeted campaigns: a saved segment frozen into a list, a random control group held out, the
targets handed to an operational mailing, and the response measured against the control group.

Life cycle: ``draft`` (created) → ``frozen`` (list written) → ``sent`` (handed to a mailing).

**Freezing** evaluates the campaign's segment once and writes one ``CampaignMember`` per
customer; the list never changes afterwards, whatever happens to the segment. Freezing twice is
refused.

**Control group**: customer ``c`` is in the control group iff ``u(c) < control_percent / 100``
where ``u(c) = int.from_bytes(HMAC-SHA256(key=seed, msg=str(c))[:8], "big") / 2**64``, the
``seed`` being the campaign's 32 hex characters (``secrets.token_hex(16)``, drawn at creation)
used as the ASCII key. The comparison is done exactly in integers (``h * 100 <
control_percent * 2**64``). Each customer is drawn independently and uniformly, whatever the
order of the ids; the same seed always gives the same groups, another campaign's seed different
ones.

**Results**: a customer responded when they placed at least one order (not cancelled or
returned) in ``[frozen_at, frozen_at + response_days)``. For each group: size ``n``, responders
``x``, response rate ``x / n`` and revenue per customer (the group's orders of the window in the
default currency, summed, divided by ``n`` and rounded half up, integer minor units). The uplift
is ``rate_target - rate_control``, with a 95 % confidence interval for a difference of two
proportions by Newcombe's hybrid score method (method 10 of Newcombe 1998): with Wilson score
intervals ``(l1, u1)`` of the target rate ``p1`` and ``(l2, u2)`` of the control rate ``p2``,

    lower = (p1 - p2) - sqrt((p1 - l1)**2 + (u2 - p2)**2)
    upper = (p1 - p2) + sqrt((u1 - p1)**2 + (p2 - l2)**2)

When either group is empty there is no uplift and no interval. The incremental revenue is
``(revenue per target - revenue per control) × targets``. Results are computed from the orders
each time (a campaign list is small): nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Conflict, Invalid, StaleVersion
from plugins.analytical import segments
from plugins.analytical.config import settings
from plugins.analytical.models import Campaign, CampaignMember, Segment
from plugins.analytical.snapshots import insert_rows
from plugins.analytical.sql import EXCLUDED_STATUSES

if TYPE_CHECKING:
    from core.auth import SignedIn
    from core.runtime import Crm

STATUSES = ("draft", "frozen", "sent")
TARGET, CONTROL = "target", "control"
Z_95 = 1.959963984540054
CAMPAIGN_PREFIX, SEGMENT_PREFIX = "campaign:", "segment:"

__all__ = ["Conflict", "Invalid", "StaleVersion"]


# --- control group ------------------------------------------------------------------------------


def draw(seed: str, customer_id: int) -> int:
    """The customer's 64-bit draw: the first 8 bytes of HMAC-SHA256(seed, id), big-endian."""
    digest = hmac.new(seed.encode("ascii"), str(customer_id).encode("ascii"), hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "big")


def in_control(seed: str, customer_id: int, control_percent: int) -> bool:
    """Whether the customer is held out: ``draw / 2**64 < control_percent / 100``, exactly."""
    return draw(seed, customer_id) * 100 < control_percent * 2**64


def assign(seed: str, customer_ids: list[int], control_percent: int) -> dict[int, str]:
    """``target`` or ``control`` for each customer."""
    return {c: CONTROL if in_control(seed, c, control_percent) else TARGET for c in customer_ids}


# --- campaigns ----------------------------------------------------------------------------------


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid({name: f"a whole number from {low} to {high} is needed"})
    return value


def create_campaign(
    session: Session,
    crm: Crm,
    name: str,
    segment_id: int,
    control_percent: int | None = None,
    response_days: int | None = None,
    user_id: int | None = None,
) -> Campaign:
    """A draft campaign on a saved segment, with a fresh secret seed.

    ``control_percent`` and ``response_days`` default to the module settings of the same names.
    """
    defaults = settings(crm)
    clean_name = " ".join(str(name or "").split())
    if not clean_name or len(clean_name) > 200:
        raise Invalid({"name": "a name of 1 to 200 characters is needed"})
    if session.get(Segment, segment_id) is None:
        raise Invalid({"segment_id": f"no segment {segment_id}"})
    percent = defaults["control_percent"] if control_percent is None else control_percent
    days = defaults["response_days"] if response_days is None else response_days
    campaign = Campaign(
        name=clean_name,
        segment_id=segment_id,
        status="draft",
        control_percent=_whole(percent, "control_percent", 0, 100),
        response_days=_whole(days, "response_days", 1, 3650),
        seed=secrets.token_hex(16),
        created_by=user_id,
    )
    session.add(campaign)
    session.flush()
    return campaign


def freeze(
    session: Session,
    crm: Crm,
    campaign: Campaign,
    version: int | None = None,
    today: dt.date | None = None,
) -> Campaign:
    """Evaluate the segment now and write the frozen list with its control group.

    ``Conflict`` when the campaign is not a draft (freezing twice) or its segment was deleted;
    ``StaleVersion`` when ``version`` is not the current one. The campaign row is updated (and
    its version checked in SQL) before the members are written, so two simultaneous freezes
    cannot both succeed.
    """
    if version is not None and version != campaign.version:
        raise StaleVersion(campaign)
    if campaign.status != "draft":
        raise Conflict(f"campaign {campaign.id} is {campaign.status}; its list is frozen already")
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    if segment is None:
        raise Conflict(f"campaign {campaign.id} has no segment any more; create a new campaign")
    groups = assign(
        campaign.seed,
        segments.customer_ids(session, crm, segment.definition, today),
        campaign.control_percent,
    )
    campaign.status = "frozen"
    campaign.frozen_at = utcnow()
    campaign.controls = sum(1 for g in groups.values() if g == CONTROL)
    campaign.targets = len(groups) - campaign.controls
    session.flush()
    insert_rows(
        session,
        CampaignMember.__table__,
        ({"campaign_id": campaign.id, "customer_id": c, "grp": g} for c, g in groups.items()),
    )
    return campaign


def member_ids(session: Session, campaign_id: int, group: str = TARGET) -> list[int]:
    """The frozen list's customers of ``group``, by id."""
    return list(
        session.scalars(
            select(CampaignMember.customer_id)
            .where(CampaignMember.campaign_id == campaign_id, CampaignMember.grp == group)
            .order_by(CampaignMember.customer_id)
        )
    )


def _template_id(session: Session, template: Any) -> int:
    """The id of a mail template given by id or name; ``Invalid`` on ``template_id``."""
    from plugins.operational.models import MailTemplate

    found = None
    if isinstance(template, int) and not isinstance(template, bool):
        found = session.get(MailTemplate, template)
    elif isinstance(template, str) and template.strip():
        text = template.strip()
        found = session.get(MailTemplate, int(text)) if text.isdigit() else None
        found = found or session.scalar(select(MailTemplate).where(MailTemplate.name == text))
    if found is None:
        raise Invalid({"template_id": f"no mail template {template!r}"})
    return found.id


def send_to_mailing(
    crm: Crm,
    session: Session,
    campaign: Campaign,
    template_id: int | str,
    scheduled_at: dt.datetime | None = None,
    user: SignedIn | None = None,
    version: int | None = None,
) -> Any:
    """Hand the frozen targets to a new draft operational mailing and mark the campaign sent.

    The mailing's audience is ``{"segment": "campaign:<id>"}``, which this module answers with
    the targets (never the control group) when the mailing is scheduled. Scheduling and sending
    stay with the operational module (and its record rules). Returns the mailing.
    """
    from plugins.operational import mailings

    if version is not None and version != campaign.version:
        raise StaleVersion(campaign)
    if campaign.status != "frozen":
        raise Conflict(
            f"campaign {campaign.id} is {campaign.status}; only a frozen campaign is handed over"
        )
    mailing = mailings.create_mailing(  # its ``Invalid`` is ``core.errors.Invalid`` too
        session,
        {
            "name": campaign.name,
            "template_id": _template_id(session, template_id),
            "audience": {"segment": f"{CAMPAIGN_PREFIX}{campaign.id}"},
            "scheduled_at": scheduled_at,
        },
        user.id if user is not None else None,
    )
    campaign.mailing_id = mailing.id
    campaign.status = "sent"
    session.flush()
    return mailing


def mailing_segment(crm: Crm, session: Session, name: str) -> list[int] | None:
    """The operational ``mailing_segment`` hook: ``campaign:<id>`` gives a frozen campaign's
    targets, ``segment:<name>`` a saved segment's customers now; ``None`` for anything else
    (including a campaign not frozen yet)."""
    if name.startswith(CAMPAIGN_PREFIX):
        key = name.removeprefix(CAMPAIGN_PREFIX).strip()
        campaign = session.get(Campaign, int(key)) if key.isdigit() else None
        if campaign is None or campaign.status == "draft":
            return None
        return member_ids(session, campaign.id, TARGET)
    if name.startswith(SEGMENT_PREFIX):
        segment = session.scalar(
            select(Segment).where(Segment.name == name.removeprefix(SEGMENT_PREFIX).strip())
        )
        if segment is None:
            return None
        return segments.customer_ids(session, crm, segment.definition)
    return None


def find_campaign(session: Session, key: str | int) -> Campaign | None:
    """The campaign with this id."""
    text = str(key).strip()
    return session.get(Campaign, int(text)) if text.isdigit() else None


def campaign_as_dict(campaign: Campaign) -> dict[str, Any]:
    """Plain data for the API and the command line (the seed stays secret)."""
    return {
        name: getattr(campaign, name)
        for name in (
            "id",
            "name",
            "segment_id",
            "status",
            "control_percent",
            "response_days",
            "frozen_at",
            "targets",
            "controls",
            "mailing_id",
            "created_by",
            "created_at",
            "version",
        )
    }


# --- results ------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (``n`` > 0)."""
    p = successes / n
    centre = 2 * n * p + z * z
    spread = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    denominator = 2 * (n + z * z)
    return (centre - spread) / denominator, (centre + spread) / denominator


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (method 10) for ``x1/n1 - x2/n2``; ``None`` when a
    group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    delta = p1 - p2
    lower = delta - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = delta + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return lower, upper


def _per_customer(total: int, n: int) -> int:
    """``total / n`` rounded half up, in integers (0 for an empty group)."""
    if n == 0:
        return 0
    quotient, remainder = divmod(total, n)
    return quotient + (1 if 2 * remainder >= n else 0)


@dataclass
class Group:
    """One group's response: size, responders, rate and revenue per customer."""

    size: int
    responders: int
    revenue_minor: int

    @property
    def rate(self) -> float | None:
        """Responders per member; ``None`` for an empty group."""
        return self.responders / self.size if self.size else None

    @property
    def revenue_per_customer_minor(self) -> int:
        """Revenue of the window per member, integer minor units."""
        return _per_customer(self.revenue_minor, self.size)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, with the derived figures."""
        return {
            **asdict(self),
            "rate": self.rate,
            "revenue_per_customer_minor": self.revenue_per_customer_minor,
        }


@dataclass
class Results:
    """A campaign's response: both groups, the uplift with its interval, incremental revenue."""

    campaign_id: int
    window_start: dt.datetime
    window_end: dt.datetime
    complete: bool
    currency: str
    target: Group
    control: Group
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    incremental_revenue_minor: int | None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the API and ``--format json``."""
        data = asdict(self)
        data["target"], data["control"] = self.target.as_dict(), self.control.as_dict()
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        return data


def _group_totals(
    session: Session, campaign_id: int, start: dt.datetime, end: dt.datetime, currency: str
) -> dict[str, Group]:
    """One query: members, responders and window revenue per group."""
    from plugins.operational.models import Order

    orders = (
        select(
            Order.customer_id.label("customer_id"),
            func.sum(case((Order.currency == currency, Order.total_minor), else_=0)).label(
                "revenue"
            ),
        )
        .where(
            Order.placed_at >= start,
            Order.placed_at < end,
            Order.status.not_in(EXCLUDED_STATUSES),
        )
        .group_by(Order.customer_id)
        .subquery()
    )
    query = (
        select(
            CampaignMember.grp,
            func.count(),
            func.count(orders.c.customer_id),
            func.coalesce(func.sum(orders.c.revenue), 0),
        )
        .outerjoin(orders, orders.c.customer_id == CampaignMember.customer_id)
        .where(CampaignMember.campaign_id == campaign_id)
        .group_by(CampaignMember.grp)
    )
    found = {TARGET: Group(0, 0, 0), CONTROL: Group(0, 0, 0)}
    for grp, size, responders, revenue in session.execute(query):
        found[grp] = Group(int(size), int(responders), int(revenue))
    return found


def results(session: Session, crm: Crm, campaign: Campaign) -> Results | None:
    """The campaign's response so far; ``None`` before it is frozen."""
    if campaign.frozen_at is None:
        return None
    start = campaign.frozen_at
    end = start + dt.timedelta(days=campaign.response_days)
    currency = crm.settings.default_currency
    groups = _group_totals(session, campaign.id, start, end, currency)
    target, control = groups[TARGET], groups[CONTROL]
    interval = newcombe(target.responders, target.size, control.responders, control.size)
    uplift = (
        target.rate - control.rate if target.rate is not None and control.rate is not None else None
    )
    incremental = (
        (target.revenue_per_customer_minor - control.revenue_per_customer_minor) * target.size
        if uplift is not None
        else None
    )
    return Results(
        campaign_id=campaign.id,
        window_start=start,
        window_end=end,
        complete=utcnow() >= end,
        currency=currency,
        target=target,
        control=control,
        uplift=uplift,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        incremental_revenue_minor=incremental,
    )
