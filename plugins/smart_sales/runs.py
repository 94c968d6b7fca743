"""Mining runs: order baskets out of the database, rules into it, the current rules, mutes.

A run reads every order (or those placed since a day) that is not cancelled or returned, as
one basket of distinct product ids; baskets with more distinct products than
``max_basket_size`` are left out (counted as *capped*: bulk orders say little about what
goes together and cost the most). :func:`plugins.smart_sales.mining.mine` finds the rules,
which are stored with the run's parameters in one transaction. A refused mining (support too
low, too many itemsets) leaves a *failed* run carrying the message, and no rules.

The rules of the latest successful run are the current ones: alerts are raised from them
(``alerts.generate``) unless a reviewer muted them; a mute is kept by rule key, so it outlives
the run that found the rule.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, false, func, insert, or_, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import NotFoundError
from plugins.smart_sales.mining import MiningError
from plugins.smart_sales.models import MiningRun, MutedRule, Rule

if TYPE_CHECKING:
    from core.runtime import Crm

log = logging.getLogger(__name__)

#: The parameters a run stores, in this order.
PARAMS = ("min_support", "min_confidence", "min_lift", "max_length", "max_basket_size", "since")
#: ``"<antecedent ids>><consequent ids>"``, ids comma-separated.
KEY_PATTERN = re.compile(r"^\d+(,\d+)*>\d+(,\d+)*$")
_INSERT_BATCH = 5_000
#: How rules may be sorted: each descending, then in the order mined.
SORTS = {
    "confidence": (Rule.confidence.desc(), Rule.lift.desc()),
    "lift": (Rule.lift.desc(), Rule.confidence.desc()),
    "support": (Rule.support.desc(), Rule.confidence.desc()),
    "leverage": (Rule.leverage.desc(), Rule.confidence.desc()),
}


@dataclass
class Baskets:
    """The baskets to mine: distinct product ids per order, in line order.

    ``orders`` counts the orders with at least one product line, ``capped`` those left out
    for holding more distinct products than ``max_basket_size``.
    """

    baskets: list[list[int]] = field(default_factory=list)
    capped: int = 0
    orders: int = 0


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC of ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def load_baskets(
    session: Session, *, since: dt.date | None = None, max_basket_size: int
) -> Baskets:
    """Every non-excluded order's distinct product ids, in one query over the order lines.

    Orders cancelled or returned (``plugins.analytical.sql.EXCLUDED_STATUSES``) and lines
    without a product are left out; ``since`` keeps orders placed on or after that day (UTC).
    Baskets with more than ``max_basket_size`` distinct products are counted in ``capped``
    and left out.
    """
    from plugins.analytical.sql import EXCLUDED_STATUSES
    from plugins.operational.models import Order, OrderLine

    query = (
        select(OrderLine.order_id, OrderLine.product_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.product_id.is_not(None), Order.status.not_in(EXCLUDED_STATUSES))
        .order_by(OrderLine.order_id, OrderLine.id)
    )
    if since is not None:
        query = query.where(Order.placed_at >= _day_start(since))
    found = Baskets()
    rows = session.connection().execute(query.execution_options(yield_per=10_000))
    for _order_id, lines in groupby(rows, key=itemgetter(0)):
        basket = list(dict.fromkeys(line[1] for line in lines))
        found.orders += 1
        if len(basket) > max_basket_size:
            found.capped += 1
        else:
            found.baskets.append(basket)
    return found


def resolve_params(crm: Crm, **given: Any) -> dict[str, Any]:
    """The run's parameters: those given (not ``None``), else the module's settings.

    ``since`` (a date or ``None``) is stored as an ISO date. Values out of range raise
    :class:`MiningError` naming the parameter.
    """
    from plugins.smart_sales.config import settings

    values = settings(crm)
    params: dict[str, Any] = {}
    for name in PARAMS[:-1]:
        value = given.get(name)
        params[name] = values[name] if value is None else value
    since = given.get("since")
    params["since"] = since.isoformat() if isinstance(since, dt.date) else since
    for name in ("min_support", "min_confidence", "min_lift"):
        params[name] = float(params[name])
    for name in ("max_length", "max_basket_size"):
        params[name] = int(params[name])
    problems = check_params(params)
    if problems:
        raise MiningError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    return params


def check_params(params: dict[str, Any]) -> dict[str, str]:
    """What is wrong with each mining parameter (empty when all are fine)."""
    problems: dict[str, str] = {}
    support = params.get("min_support")
    if support is not None and (math.isnan(support) or not 0 < support <= 1):
        problems["min_support"] = f"must be more than 0 and at most 1, got {support}"
    confidence = params.get("min_confidence")
    if confidence is not None and (math.isnan(confidence) or not 0 <= confidence <= 1):
        problems["min_confidence"] = f"must be between 0 and 1, got {confidence}"
    lift = params.get("min_lift")
    if lift is not None and (math.isnan(lift) or lift < 0):
        problems["min_lift"] = f"must be at least 0, got {lift}"
    length = params.get("max_length")
    if length is not None and not 2 <= length <= 10:
        problems["max_length"] = f"must be between 2 and 10, got {length}"
    size = params.get("max_basket_size")
    if size is not None and not 2 <= size <= 10_000:
        problems["max_basket_size"] = f"must be between 2 and 10000, got {size}"
    return problems


def rule_key(antecedent_ids: Iterable[int], consequent_ids: Iterable[int]) -> str:
    """The key naming a rule across runs: sorted ids of each side, ``"1,4>7"``."""
    return (
        ",".join(str(i) for i in sorted(antecedent_ids))
        + ">"
        + ",".join(str(i) for i in sorted(consequent_ids))
    )


def _finish(crm: Crm, run_id: int, **values: Any) -> MiningRun:
    """Write the outcome of run ``run_id`` (in its own transaction) and return it."""
    with crm.db.write() as session:
        run = session.get(MiningRun, run_id)
        for name, value in values.items():
            setattr(run, name, value)
        run.finished_at = utcnow()
    return run


def _mine(baskets: Baskets, params: dict[str, Any]) -> tuple[list[Any], int]:
    """The rules passing the thresholds, and the number of frequent itemsets."""
    from plugins.smart_sales.mining import mine_counted

    mined = mine_counted(
        baskets.baskets,
        min_support=params["min_support"],
        min_confidence=params["min_confidence"],
        min_lift=params["min_lift"],
        max_length=params["max_length"],
        max_basket_size=params["max_basket_size"],
    )
    return mined.rules, mined.itemsets


def _store_rules(session: Session, run_id: int, rules: list[Any], baskets: int) -> None:
    """Insert the rules of run ``run_id`` in bulk, SKUs as they are now."""
    from plugins.operational.models import Product

    ids = {i for r in rules for i in (*r.antecedent, *r.consequent)}
    skus: dict[int, str] = {}
    id_list = sorted(ids)
    for start in range(0, len(id_list), 1_000):
        chunk = id_list[start : start + 1_000]
        skus.update(
            session.execute(select(Product.id, Product.sku).where(Product.id.in_(chunk))).all()
        )
    rows = [
        {
            "run_id": run_id,
            "key": rule_key(r.antecedent, r.consequent),
            "antecedent_ids": list(r.antecedent),
            "consequent_ids": list(r.consequent),
            "antecedent": [skus.get(i, str(i)) for i in r.antecedent],
            "consequent": [skus.get(i, str(i)) for i in r.consequent],
            "support": r.support,
            "confidence": r.confidence,
            "lift": r.lift,
            "leverage": r.leverage,
            "conviction": None if math.isinf(r.conviction) else r.conviction,
            "count": round(r.support * baskets),
        }
        for r in rules
    ]
    for start in range(0, len(rows), _INSERT_BATCH):
        session.execute(insert(Rule.__table__), rows[start : start + _INSERT_BATCH])


def prune_rules(session: Session, keep: int) -> int:
    """Delete the rules of every successful run but the latest ``keep`` (the runs stay, as
    history; alerts keep their rule's key); returns how many rules went."""
    kept = (
        select(MiningRun.id)
        .where(MiningRun.status == "ok")
        .order_by(MiningRun.id.desc())
        .limit(keep)
        .scalar_subquery()
    )
    older = select(MiningRun.id).where(MiningRun.status == "ok", MiningRun.id.not_in(kept))
    return session.execute(delete(Rule).where(Rule.run_id.in_(older))).rowcount


def run_mining(
    crm: Crm,
    *,
    min_support: float | None = None,
    min_confidence: float | None = None,
    min_lift: float | None = None,
    max_length: int | None = None,
    max_basket_size: int | None = None,
    since: dt.date | None = None,
    started_by: int | None = None,
    raise_alerts: bool = True,
) -> MiningRun:
    """Mine the order baskets, store the run and its rules, then raise alerts.

    Parameters left ``None`` come from the module's settings. The run is recorded as
    *running* first; then the baskets are loaded and mined, and the rules stored with the run
    marked *ok* in one transaction. A :class:`MiningError` (a parameter out of range, a
    support so low it would explode memory) marks the run *failed* with the message (and the
    baskets it would have mined), stores no rules and is raised again; so is any other
    error. With ``raise_alerts``, ``alerts.generate(run=run, source="mining")`` runs
    afterwards in its own transaction and ``alerts_raised`` records what it raised.
    """
    given = {
        "min_support": min_support,
        "min_confidence": min_confidence,
        "min_lift": min_lift,
        "max_length": max_length,
        "max_basket_size": max_basket_size,
        "since": since,
    }
    clock = time.perf_counter()
    try:
        params = resolve_params(crm, **given)
        problem = None
    except MiningError as exc:
        params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in given.items()}
        problem = exc
    with crm.db.write() as session:
        run = MiningRun(status="running", params=params, started_by=started_by)
        session.add(run)
        session.flush()
        run_id = run.id

    def elapsed() -> int:
        return round((time.perf_counter() - clock) * 1000)

    baskets = Baskets()
    try:
        if problem is not None:
            raise problem
        with crm.db.session() as session:
            baskets = load_baskets(session, since=since, max_basket_size=params["max_basket_size"])
        rules, itemsets = _mine(baskets, params)
        with crm.db.write() as session:
            _store_rules(session, run_id, rules, len(baskets.baskets))
            run = session.get(MiningRun, run_id)
            run.status = "ok"
            run.baskets = len(baskets.baskets)
            run.baskets_capped = baskets.capped
            run.itemsets = itemsets
            run.rules = len(rules)
            run.duration_ms = elapsed()
            run.finished_at = utcnow()
            session.flush()
            prune_rules(session, crm.module_settings("smart_sales")["keep_rule_runs"])
    except BaseException as exc:
        message = str(exc) if isinstance(exc, MiningError) else f"{type(exc).__name__}: {exc}"
        _finish(
            crm,
            run_id,
            status="failed",
            error=message,
            duration_ms=elapsed(),
            baskets=len(baskets.baskets),
            baskets_capped=baskets.capped,
        )
        raise
    log.info("mining run %s: %s rules from %s baskets", run_id, run.rules, run.baskets)
    if raise_alerts:
        from plugins.smart_sales import alerts

        with crm.db.write() as session:
            run = session.get(MiningRun, run_id)
            run.alerts_raised = alerts.generate(crm, session, run=run, source="mining")
    return run


def current_run(session: Session) -> MiningRun | None:
    """The latest successful run (its rules are the current rules), or ``None``."""
    return session.scalars(
        select(MiningRun).where(MiningRun.status == "ok").order_by(MiningRun.id.desc()).limit(1)
    ).first()


def muted_keys(session: Session, keys: Iterable[str] | None = None) -> set[str]:
    """The keys of muted rules (among ``keys`` when given)."""
    query = select(MutedRule.key)
    if keys is not None:
        wanted = list(set(keys))
        if not wanted:
            return set()
        found: set[str] = set()
        for start in range(0, len(wanted), 1_000):
            chunk = wanted[start : start + 1_000]
            found.update(session.scalars(query.where(MutedRule.key.in_(chunk))))
        return found
    return set(session.scalars(query))


def product_condition(product_id: int) -> Any:
    """Rules naming ``product_id`` on either side, read from the key (``"1,4>7"``)."""
    p = str(product_id)
    patterns = (f"{p},%", f"{p}>%", f"%,{p},%", f"%,{p}>%", f"%>{p}", f"%>{p},%", f"%,{p}")
    return or_(Rule.key == p, *(Rule.key.like(pattern) for pattern in patterns))


def rules_query(
    session: Session,
    run_id: int,
    *,
    sku: str | None = None,
    min_lift: float | None = None,
    muted: bool | None = None,
    sort: str = "confidence",
) -> Select[Any]:
    """The rules of run ``run_id`` naming the product ``sku`` (either side), with a lift of
    at least ``min_lift``, muted or not, sorted by ``sort`` (see ``SORTS``)."""
    from plugins.operational.models import Product

    query = select(Rule).where(Rule.run_id == run_id)
    if sku:
        product_id = session.scalar(select(Product.id).where(Product.sku == sku.strip()))
        query = query.where(product_condition(product_id) if product_id is not None else false())
    if min_lift is not None:
        query = query.where(Rule.lift >= min_lift)
    if muted is not None:
        is_muted = select(MutedRule.key).where(MutedRule.key == Rule.key).exists()
        query = query.where(is_muted if muted else ~is_muted)
    return query.order_by(*SORTS.get(sort, SORTS["confidence"]), Rule.id)


def page(session: Session, query: Select[Any], limit: int, offset: int) -> tuple[int, list[Any]]:
    """How many rows ``query`` finds, and ``limit`` of them from ``offset``."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return total or 0, list(session.scalars(query.limit(limit).offset(offset)))


def rule_as_dict(rule: Rule, muted: bool = False) -> dict[str, Any]:
    """A rule, JSON-ready: both sides as SKUs (and product ids), its metrics, its key, and
    whether it is ``muted`` (say so: the rule alone does not know)."""
    return {
        "id": rule.id,
        "run_id": rule.run_id,
        "key": rule.key,
        "antecedent": list(rule.antecedent),
        "consequent": list(rule.consequent),
        "antecedent_ids": list(rule.antecedent_ids),
        "consequent_ids": list(rule.consequent_ids),
        "support": rule.support,
        "confidence": rule.confidence,
        "lift": rule.lift,
        "leverage": rule.leverage,
        "conviction": rule.conviction,
        "count": rule.count,
        "muted": muted,
    }


def run_as_dict(run: MiningRun) -> dict[str, Any]:
    """A mining run, JSON-ready."""
    return {
        "id": run.id,
        "status": run.status,
        "params": dict(run.params or {}),
        "baskets": run.baskets,
        "capped": run.baskets_capped,
        "itemsets": run.itemsets,
        "rules": run.rules,
        "alerts_raised": run.alerts_raised,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "started_by": run.started_by,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def mute(session: Session, key: str, user_id: int | None, reason: str = "") -> MutedRule:
    """Stop the rule ``key`` from raising alerts (in this run and later ones).

    Muting a muted rule changes its reason. ``NotFoundError`` when no run found that rule.
    """
    key = key.strip()
    if (
        not KEY_PATTERN.match(key)
        or session.scalar(select(Rule.id).where(Rule.key == key).limit(1)) is None
    ):
        raise NotFoundError(f"no rule {key!r}")
    muted = session.get(MutedRule, key)
    if muted is None:
        muted = MutedRule(key=key, reason=reason or "", muted_by=user_id, muted_at=utcnow())
        session.add(muted)
    elif muted.reason != (reason or ""):
        muted.reason = reason or ""
    session.flush()
    return muted


def unmute(session: Session, key: str) -> bool:
    """Let the rule ``key`` raise alerts again; ``False`` when it was not muted."""
    muted = session.get(MutedRule, key.strip())
    if muted is None:
        return False
    session.delete(muted)
    session.flush()
    return True
