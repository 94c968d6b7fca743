"""Segments: a definition of customers by value, behaviour and profile, evaluated in SQL.

A definition is a JSON object; every criterion given must hold (AND), a list criterion matches
any of its values (OR inside it). Criteria:

- ``rfm_segments``: segments of the latest RFM snapshot (``rfm.SEGMENTS``);
- ``classes``: loyal, potential, new, unaware, from the latest "classes" snapshot;
- ``tiers``: value tiers A, B, C from the latest "profit" snapshot;
- ``clv_min`` / ``clv_max``: lifetime value in minor units (inclusive bounds), latest "clv";
- ``tags``: any of these customer tags; ``countries``: any of these ISO-2 codes;
- ``bought_products`` / ``not_bought_products``: product SKUs, ``bought_categories`` /
  ``not_bought_categories``: product categories, on the customer's orders;
- ``last_purchase_within_days``: an order placed on or after the UTC day ``today - N``;
  ``last_purchase_before_days``: at least one order, none placed on or after ``today - N``
  (customers who never bought do not match).

Orders count only when not cancelled or returned. Archived customers never match. A snapshot
criterion matches nobody until that snapshot has been computed. The result is one SELECT of
customer ids with ``IN`` / ``EXISTS`` subqueries, the same on SQLite and PostgreSQL.

Saved segments (``Segment`` rows) store the cleaned definition and are evaluated whenever they
are used (dynamic); campaigns freeze them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from core.customers.models import Customer, CustomerTag
from core.errors import Conflict, Invalid, StaleVersion
from core.web.inputs import BODY, MAX_AMOUNT, NOT_BLANK, Whole
from plugins.analytical.models import ClvScore, CustomerClass, Profit, RfmScore, Segment
from plugins.analytical.rfm import SEGMENTS
from plugins.analytical.snapshots import latest_run_id
from plugins.analytical.sql import EXCLUDED_STATUSES

if TYPE_CHECKING:
    from core.runtime import Crm

RFM_SEGMENTS = tuple(name for name, *_ in SEGMENTS)
CLASSES = ("loyal", "potential", "new", "unaware")
TIERS = ("A", "B", "C")
PREVIEW_SIZE = 20
MAX_VALUES = 500
MAX_DAYS = 36_500


def _choices(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; expected {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def _texts(values: list[str], longest: int, what: str) -> list[str]:
    cleaned = [" ".join(v.split()) for v in values]
    if any(not v or len(v) > longest for v in cleaned):
        raise ValueError(f"each {what} must be 1 to {longest} characters")
    return list(dict.fromkeys(cleaned))


#: A list criterion: one to ``MAX_VALUES`` values, any of which matches.
TextList = Annotated[list[str], Field(min_length=1, max_length=MAX_VALUES)]


def _listed(**item: Any) -> Any:
    """A list criterion's field whose documented schema says what each value must be."""
    return Field(None, json_schema_extra={"items": item})


class Definition(BaseModel):
    """A segment definition: every criterion given must hold; unknown keys are refused."""

    model_config = BODY

    rfm_segments: TextList | None = _listed(enum=list(RFM_SEGMENTS))
    classes: TextList | None = _listed(enum=list(CLASSES))
    tiers: TextList | None = _listed(enum=list(TIERS))
    clv_min: Whole | None = Field(None, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    clv_max: Whole | None = Field(None, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    tags: TextList | None = _listed(maxLength=50, pattern=NOT_BLANK)
    countries: TextList | None = _listed(pattern=r"^\s*[A-Za-z]{2}\s*$")
    bought_products: TextList | None = _listed(maxLength=64, pattern=NOT_BLANK)
    not_bought_products: TextList | None = _listed(maxLength=64, pattern=NOT_BLANK)
    bought_categories: TextList | None = _listed(maxLength=100, pattern=NOT_BLANK)
    not_bought_categories: TextList | None = _listed(maxLength=100, pattern=NOT_BLANK)
    last_purchase_within_days: Whole | None = Field(None, ge=1, le=MAX_DAYS)
    last_purchase_before_days: Whole | None = Field(None, ge=1, le=MAX_DAYS)

    @field_validator("rfm_segments")
    @classmethod
    def _rfm(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _choices(values, RFM_SEGMENTS, "RFM segment")

    @field_validator("classes")
    @classmethod
    def _classes(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _choices(values, CLASSES, "class")

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        return _choices([v.strip().upper() for v in values], TIERS, "tier")

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _texts([v.lower() for v in values], 50, "tag")

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        codes = [v.strip().upper() for v in values]
        bad = [v for v in codes if not re.fullmatch(r"[A-Z]{2}", v)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: countries are two-letter codes such as VN")
        return list(dict.fromkeys(codes))

    @field_validator("bought_products", "not_bought_products")
    @classmethod
    def _skus(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _texts(values, 64, "SKU")

    @field_validator("bought_categories", "not_bought_categories")
    @classmethod
    def _categories(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _texts(values, 100, "category")

    @model_validator(mode="after")
    def _ranges(self) -> Definition:
        if self.clv_min is not None and self.clv_max is not None and self.clv_min > self.clv_max:
            raise ValueError("clv_min is larger than clv_max")
        within, before = self.last_purchase_within_days, self.last_purchase_before_days
        if within is not None and before is not None and within <= before:
            raise ValueError(
                "last_purchase_within_days must be larger than last_purchase_before_days"
                " (no customer can match otherwise)"
            )
        return self


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"definition.<field>": message}`` for each error pydantic found."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = [str(part) for part in error["loc"] if not isinstance(part, int)]
        name = ".".join(["definition", *where])
        if not where and error["type"] == "value_error":  # a cross-field rule names its fields
            message = str(error["msg"]).removeprefix("Value error, ")
            name = "definition." + message.split(" ", 1)[0]
        errors.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return errors


def parse(definition: Any) -> Definition:
    """The definition validated and cleaned; ``Invalid`` naming each bad field otherwise."""
    if isinstance(definition, Definition):
        return definition
    if not isinstance(definition, dict):
        raise Invalid({"definition": "a definition is a JSON object of criteria"})
    try:
        return Definition.model_validate(definition)
    except ValidationError as exc:
        raise Invalid(_field_errors(exc)) from None


def clean(definition: Any) -> dict[str, Any]:
    """The definition as stored: validated, without the criteria not given."""
    return parse(definition).model_dump(exclude_none=True)


# --- evaluation ---------------------------------------------------------------------------------


def _snapshot(model: Any, kind: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """Customers whose row in the latest ``kind`` snapshot satisfies ``condition``."""
    return Customer.id.in_(
        select(model.customer_id).where(model.run_id == latest_run_id(kind), condition)
    )


def _orders(*conditions: ColumnElement[bool]) -> Any:
    """EXISTS an order of the customer, not cancelled or returned, meeting ``conditions``."""
    from plugins.operational.models import Order

    return exists().where(
        Order.customer_id == Customer.id, Order.status.not_in(EXCLUDED_STATUSES), *conditions
    )


def _bought(column: Any, values: list[str]) -> Any:
    """EXISTS an order line of the customer whose product's ``column`` is one of ``values``."""
    from plugins.operational.models import Order, OrderLine, Product

    return (
        select(OrderLine.id)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(
            Order.customer_id == Customer.id,
            Order.status.not_in(EXCLUDED_STATUSES),
            column.in_(values),
        )
        .exists()
    )


def _cutoff(today: dt.date, days: int) -> dt.datetime:
    """00:00 UTC of the day ``days`` before ``today``."""
    return dt.datetime.combine(today - dt.timedelta(days=days), dt.time(), tzinfo=dt.UTC)


def _value_conditions(d: Definition) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if d.rfm_segments:
        conditions.append(_snapshot(RfmScore, "rfm", RfmScore.segment.in_(d.rfm_segments)))
    if d.classes:
        conditions.append(_snapshot(CustomerClass, "classes", CustomerClass.klass.in_(d.classes)))
    if d.tiers:
        conditions.append(_snapshot(Profit, "profit", Profit.tier.in_(d.tiers)))
    if d.clv_min is not None or d.clv_max is not None:
        low = ClvScore.clv_minor >= d.clv_min if d.clv_min is not None else None
        high = ClvScore.clv_minor <= d.clv_max if d.clv_max is not None else None
        bounds = [c for c in (low, high) if c is not None]
        conditions.append(_snapshot(ClvScore, "clv", and_(*bounds)))
    return conditions


def _profile_conditions(d: Definition) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if d.tags:
        conditions.append(
            Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag.in_(d.tags)))
        )
    if d.countries:
        conditions.append(Customer.country.in_(d.countries))
    return conditions


def _purchase_conditions(d: Definition, today: dt.date) -> list[ColumnElement[bool]]:
    from plugins.operational.models import Order, Product

    conditions: list[ColumnElement[bool]] = []
    if d.bought_products:
        conditions.append(_bought(Product.sku, d.bought_products))
    if d.not_bought_products:
        conditions.append(~_bought(Product.sku, d.not_bought_products))
    if d.bought_categories:
        conditions.append(_bought(Product.category, d.bought_categories))
    if d.not_bought_categories:
        conditions.append(~_bought(Product.category, d.not_bought_categories))
    if d.last_purchase_within_days is not None:
        since = _cutoff(today, d.last_purchase_within_days)
        conditions.append(_orders(Order.placed_at >= since))
    if d.last_purchase_before_days is not None:
        since = _cutoff(today, d.last_purchase_before_days)
        conditions.append(_orders(Order.placed_at < since))
        conditions.append(~_orders(Order.placed_at >= since))
    return conditions


def segment_query(crm: Crm | None, definition: Any, today: dt.date | None = None) -> Select:
    """One SELECT of the ids of the non-archived customers matching ``definition``.

    ``today`` (default: the current UTC date) anchors the last-purchase windows. ``crm`` is
    accepted for symmetry with the other services (nothing in it is needed yet).
    """
    parsed = parse(definition)
    day = today or dt.datetime.now(dt.UTC).date()
    conditions = [
        Customer.archived.is_(False),
        *_value_conditions(parsed),
        *_profile_conditions(parsed),
        *_purchase_conditions(parsed, day),
    ]
    return select(Customer.id).where(*conditions)


def customer_ids(
    session: Session, crm: Crm | None, definition: Any, today: dt.date | None = None
) -> list[int]:
    """The ids of the customers matching ``definition`` now, in id order."""
    query = segment_query(crm, definition, today).order_by(Customer.id)
    return list(session.scalars(query))


@dataclass
class Preview:
    """How many customers match, and the first of them (by id)."""

    count: int
    customers: list[dict[str, Any]] = field(default_factory=list)


def preview(
    session: Session,
    definition: Any,
    visible: ColumnElement[bool] | None = None,
    crm: Crm | None = None,
    today: dt.date | None = None,
) -> Preview:
    """The number of matching customers and the first ``PREVIEW_SIZE`` by id.

    ``visible`` is the user's record rule (``records.customer_condition``): both the count and
    the list then cover only the customers the user may see.
    """
    query = segment_query(crm, definition, today)
    if visible is not None:
        query = query.where(visible)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    first = (
        query.with_only_columns(Customer.id, Customer.display_name, Customer.country)
        .order_by(Customer.id)
        .limit(PREVIEW_SIZE)
    )
    rows = [
        {"id": row.id, "display_name": row.display_name, "country": row.country}
        for row in session.execute(first)
    ]
    return Preview(count=int(count), customers=rows)


# --- saved segments -----------------------------------------------------------------------------


def _name(value: Any) -> str:
    name = " ".join(str(value or "").split())
    if not name or len(name) > 100:
        raise Invalid({"name": "a name of 1 to 100 characters is needed"})
    return name


def _check_name(session: Session, name: str, segment_id: int | None) -> None:
    found = session.scalar(select(Segment.id).where(Segment.name == name))
    if found is not None and found != segment_id:
        raise Conflict(f"a segment named {name!r} already exists (id {found})")


def create_segment(
    session: Session,
    name: str,
    definition: Any,
    description: str | None = None,
    user_id: int | None = None,
) -> Segment:
    """A new saved segment; ``Invalid`` naming the field, ``Conflict`` when the name is taken."""
    clean_name, clean_definition = _name(name), clean(definition)
    _check_name(session, clean_name, None)
    segment = Segment(
        name=clean_name,
        description=(description or "").strip() or None,
        definition=clean_definition,
        created_by=user_id,
    )
    session.add(segment)
    session.flush()
    return segment


def update_segment(
    session: Session, segment: Segment, values: dict[str, Any], version: int
) -> Segment:
    """Change ``name``, ``description`` or ``definition`` of a segment read at ``version``.

    ``StaleVersion`` when someone changed it since; the flush also checks the version in SQL.
    """
    if version != segment.version:
        raise StaleVersion(segment)
    changes: dict[str, Any] = {}
    if "name" in values:
        changes["name"] = _name(values["name"])
        _check_name(session, changes["name"], segment.id)
    if "definition" in values:
        changes["definition"] = clean(values["definition"])
    if "description" in values:
        changes["description"] = (values["description"] or "").strip() or None
    for key, value in changes.items():
        setattr(segment, key, value)
    session.flush()
    return segment


def delete_segment(session: Session, segment: Segment, version: int) -> None:
    """Delete a segment read at ``version``; campaigns made from it keep their frozen lists."""
    if version != segment.version:
        raise StaleVersion(segment)
    session.delete(segment)
    session.flush()


def find_segment(session: Session, key: str | int) -> Segment | None:
    """The segment with this id or name."""
    if isinstance(key, int) or str(key).isdigit():
        found = session.get(Segment, int(key))
        if found is not None:
            return found
    return session.scalar(select(Segment).where(Segment.name == str(key).strip()))


def segment_as_dict(segment: Segment) -> dict[str, Any]:
    """Plain data for the API and the command line."""
    return {
        name: getattr(segment, name)
        for name in (
            "id",
            "name",
            "description",
            "definition",
            "created_by",
            "created_at",
            "updated_at",
            "version",
        )
    }
