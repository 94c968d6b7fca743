"""Sending webhook deliveries: claim with a lease, POST, record, retry with backoff.

Deliveries go out from ``crm webhooks deliver`` (cron, or ``--loop`` as a worker) and from one
background thread in each web server process (``webhooks_in_server``). Any number of them may
run at once; each delivery is sent by one at a time:

1. *claim*: ``UPDATE ... SET locked_until = now + LEASE, attempts = attempts + 1 WHERE id = :id
   AND status = 'pending' AND next_attempt_at <= now AND (locked_until IS NULL OR locked_until
   <= now) AND attempts < max``. Only one worker's update matches; the pair (``locked_until``,
   ``attempts``) is its claim. The transaction ends before the request is made.
2. *send*: the URL is checked again (``core.webhooks.targets``) and the request goes to the
   address just checked, signed, without following redirects, within the timeout.
3. *settle*: on condition that the claim is still ours, a 2xx makes the delivery
   ``delivered``; anything else records the status code or error and schedules the next
   attempt after a backoff (:data:`BACKOFF`, with a little jitter), or makes it ``failed`` after
   ``webhooks_max_attempts`` attempts. Failed deliveries stay, and can be redelivered.

A worker that dies between claim and settle leaves the lease to expire; the delivery is then
claimed again (its attempt counted). Delivery is therefore **at least once**: a receiver may see
one event twice and recognises it by its ``X-CRM-Event-Id``. Deliveries of an inactive endpoint
wait until it is active again. A delivered delivery older than ``webhooks_keep_days`` is pruned
by :func:`prune_delivered`; undelivered ones are never deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, delete, func, or_, select, update

from core import __version__
from core.db import utcnow
from core.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookEndpoint
from core.webhooks.signing import SIGNATURE_HEADER, signature_header
from core.webhooks.targets import TargetError, check_target

if TYPE_CHECKING:
    import httpx

    from core.runtime import Crm

log = logging.getLogger("crm.webhooks")

#: Waits before the 2nd, 3rd... attempt; the last one repeats.
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
    dt.timedelta(hours=12),
    dt.timedelta(hours=24),
)
#: Each wait is shortened or lengthened at random by up to this share, so that retries of many
#: deliveries failed together spread out.
JITTER = 0.1
#: How long a claim holds a delivery: far longer than one request may take.
LEASE = dt.timedelta(minutes=5)
#: At most this much of a refusing target's response is kept, in characters.
EXCERPT = 500
#: The background thread looks for deliveries queued by other processes this often, in seconds.
POLL_SECONDS = 30.0
#: The background thread prunes old delivered deliveries this often, in seconds.
PRUNE_SECONDS = 3600.0
USER_AGENT = f"crm-webhooks/{__version__}"


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` run did; ``next_due`` is when something is due next."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    next_due: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        data = asdict(self)
        data["next_due"] = self.next_due.isoformat() if self.next_due else None
        return data


@dataclass(frozen=True)
class _Claim:
    id: int
    endpoint_id: int
    lease: dt.datetime
    attempts: int
    url: str
    secret: str
    event: str
    event_id: str
    body: str

    def mine(self) -> Any:
        """The condition that the delivery is still held by this claim."""
        return and_(
            WebhookDelivery.id == self.id,
            WebhookDelivery.locked_until == self.lease,
            WebhookDelivery.attempts == self.attempts,
        )


@dataclass
class _Outcome:
    delivered: bool
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0
    unreachable: bool = False


def backoff(attempts: int, rng: random.Random | None = None) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt, with jitter."""
    base = BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
    spread = (rng or random).uniform(-JITTER, JITTER)
    return base * (1 + spread)


def _due(now: dt.datetime, max_attempts: int) -> Any:
    return and_(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now),
        WebhookDelivery.attempts < max_attempts,
    )


def deliver_due(
    crm: Crm,
    limit: int = 100,
    now: dt.datetime | None = None,
    ids: Collection[int] | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` deliveries that are due (only ``ids`` when given); see the module doc.

    ``now`` stands for the current time in the database's bookkeeping (due times, leases,
    backoff); tests pass it to move time forward. An endpoint that cannot be reached is not
    tried again in the same run.
    """
    clock = _clock(now)
    now = clock()
    settings = crm.settings
    report = DeliveryReport()
    _give_up_abandoned(crm, now, settings.webhooks_max_attempts, report)
    with crm.db.session() as session:
        query = (
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(_due(now, settings.webhooks_max_attempts), WebhookEndpoint.active.is_(True))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        if ids is not None:
            query = query.where(WebhookDelivery.id.in_(list(ids)))
        due = session.execute(query).all()
    if due:
        _send_all(crm, due, clock, report)
    report.next_due = next_due(crm)
    return report


def _clock(start: dt.datetime | None) -> Callable[[], dt.datetime]:
    """The run's current time: the wall clock, shifted to ``start`` when a test gives one.

    Read afresh for every claim and every outcome, so that a lease always runs from the moment
    its delivery is taken, however long the run has been going.
    """
    if start is None:
        return utcnow
    offset = start - utcnow()
    return lambda: utcnow() + offset


def _send_all(
    crm: Crm,
    due: Sequence[Row[tuple[int, int]]],
    clock: Callable[[], dt.datetime],
    report: DeliveryReport,
) -> None:
    """Claim, send and settle each of ``due`` (delivery id, endpoint id) in turn."""
    import httpx

    settings = crm.settings
    down: set[int] = set()
    with httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.webhooks_timeout_seconds),
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        for delivery_id, endpoint_id in due:
            if endpoint_id in down:
                report.skipped += 1
                continue
            claim = _claim(crm, delivery_id, clock(), settings.webhooks_max_attempts)
            if claim is None:
                report.skipped += 1
                continue
            outcome = _send_within(
                client, claim, settings.webhooks_allow_private, settings.webhooks_timeout_seconds
            )
            retry_at = _settle(crm, claim, outcome, clock(), settings.webhooks_max_attempts, report)
            if outcome.unreachable:
                down.add(endpoint_id)
                if retry_at is not None:
                    _postpone(crm, endpoint_id, clock(), retry_at)


def _give_up_abandoned(
    crm: Crm, now: dt.datetime, max_attempts: int, report: DeliveryReport
) -> None:
    """Deliveries out of attempts whose worker stopped (or whose maximum was lowered) fail."""
    abandoned = and_(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.attempts >= max_attempts,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now),
    )
    with crm.db.session() as session:  # read first: most runs have nothing to write
        if session.scalar(select(WebhookDelivery.id).where(abandoned).limit(1)) is None:
            return
    with crm.db.write() as session:
        report.failed += session.execute(
            update(WebhookDelivery)
            .where(abandoned)
            .values(
                status=FAILED,
                locked_until=None,
                error=func.coalesce(WebhookDelivery.error + "; ", "")
                + f"gave up after {max_attempts} attempts",
            )
            .execution_options(synchronize_session=False)
        ).rowcount


def _claim(crm: Crm, delivery_id: int, now: dt.datetime, max_attempts: int) -> _Claim | None:
    """Take the delivery for this worker in a transaction of its own; ``None`` if not free."""
    lease = now + LEASE
    with crm.db.write() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due(now, max_attempts))
            .values(locked_until=lease, attempts=WebhookDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            return None
        row = session.execute(
            select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        ).one()
        delivery = row[0]
        return _Claim(
            id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            lease=lease,
            attempts=delivery.attempts,
            url=row.url,
            secret=row.secret,
            event=delivery.event,
            event_id=delivery.event_id,
            body=delivery.body,
        )


def _headers(claim: _Claim, timestamp: int) -> dict[str, str]:
    """The request's headers, the signature included."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-CRM-Event": claim.event,
        "X-CRM-Event-Id": claim.event_id,
        "X-CRM-Delivery": str(claim.id),
        "X-CRM-Timestamp": str(timestamp),
        SIGNATURE_HEADER: signature_header(claim.secret, timestamp, claim.body),
    }


def _send_within(
    client: httpx.Client, claim: _Claim, allow_private: bool, seconds: float
) -> _Outcome:
    """``_send``, given ``seconds`` in all: httpx's timeouts bound each read, not the request,
    and a receiver answering one byte at a time must not hold the deliverer (nor outlive the
    lease). A request still going at the deadline is abandoned to its daemon thread and counts
    as a failed attempt against an unreachable endpoint; should it complete later, the receiver
    gets the delivery again on the retry (at least once, as documented)."""
    result: list[_Outcome] = []

    def attempt() -> None:
        try:
            result.append(_send(client, claim, allow_private))
        except Exception as exc:  # the client closed under an abandoned request, or worse
            result.append(_Outcome(delivered=False, error=f"{type(exc).__name__}: {exc}"))

    started = time.monotonic()
    worker = threading.Thread(target=attempt, name=f"webhook-{claim.id}", daemon=True)
    worker.start()
    worker.join(seconds)
    if result:
        return result[0]
    return _Outcome(
        delivered=False,
        error=f"no complete answer within {seconds:g} s",
        duration_ms=int((time.monotonic() - started) * 1000),
        unreachable=True,
    )


def _send(client: httpx.Client, claim: _Claim, allow_private: bool) -> _Outcome:
    """POST the delivery to the address its URL resolves to now, if that address is allowed."""
    import httpx

    started = time.monotonic()

    def outcome(**values: Any) -> _Outcome:
        return _Outcome(duration_ms=int((time.monotonic() - started) * 1000), **values)

    try:
        target = check_target(claim.url, allow_private)
    except TargetError as exc:
        return outcome(delivered=False, error=f"refused: {exc.reason}")
    content = claim.body.encode("utf-8")
    sent_headers = {**_headers(claim, int(time.time())), "Host": target.host_header}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    errors: list[str] = []
    for address in target.addresses:
        request = client.build_request(
            "POST",
            target.pinned(address),
            content=content,
            headers=sent_headers,
            extensions=extensions,
        )
        try:
            response = client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            errors.append(f"{address}: cannot connect ({exc or type(exc).__name__})")
            continue
        except httpx.TimeoutException:
            return outcome(delivered=False, error=f"{address}: no answer within the timeout")
        except httpx.HTTPError as exc:
            return outcome(delivered=False, error=f"{address}: {exc or type(exc).__name__}")
        try:
            return _judge(response, outcome)
        finally:
            response.close()
    return outcome(delivered=False, error="; ".join(errors)[:EXCERPT], unreachable=True)


def _judge(response: httpx.Response, outcome: Callable[..., _Outcome]) -> _Outcome:
    """Delivered on a 2xx; otherwise the status and the start of the response as the error."""
    import httpx

    status = response.status_code
    if 200 <= status < 300:
        return outcome(delivered=True, status=status)
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        return outcome(
            delivered=False,
            status=status,
            error=f"HTTP {status}: redirect to {where[:200]!r} not followed",
        )
    excerpt = b""
    try:
        for chunk in response.iter_bytes():
            excerpt += chunk
            if len(excerpt) >= EXCERPT:
                break
    except httpx.HTTPError:
        pass
    text = excerpt.decode("utf-8", "replace").strip()[:EXCERPT]
    return outcome(delivered=False, status=status, error=f"HTTP {status}: {text}".strip(": "))


def _settle(
    crm: Crm,
    claim: _Claim,
    outcome: _Outcome,
    now: dt.datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> dt.datetime | None:
    """Record the attempt, if the claim is still ours (else another worker has it now).

    Returns when the delivery is tried again, if it is.
    """
    values: dict[str, Any] = {
        "locked_until": None,
        "last_attempt_at": now,
        "response_status": outcome.status,
        "duration_ms": outcome.duration_ms,
        "error": outcome.error,
    }
    if outcome.delivered:
        values.update(status=DELIVERED, delivered_at=now)
    elif claim.attempts >= max_attempts:
        values.update(status=FAILED)
    else:
        values.update(next_attempt_at=now + backoff(claim.attempts))
    with crm.db.write() as session:
        settled = session.execute(
            update(WebhookDelivery)
            .where(claim.mine())
            .values(values)
            .execution_options(synchronize_session=False)
        ).rowcount
    if settled != 1:
        log.warning("webhook delivery %s: lease lost before the outcome was recorded", claim.id)
        return None
    if outcome.delivered:
        report.delivered += 1
    elif values.get("status") == FAILED:
        report.failed += 1
    else:
        report.retrying += 1
    retry_at: dt.datetime | None = values.get("next_attempt_at")
    return retry_at


def _postpone(crm: Crm, endpoint_id: int, now: dt.datetime, until: dt.datetime) -> None:
    """The endpoint cannot be reached: its other due deliveries wait as long as the one tried
    (no attempt counted), rather than each failing against it right away."""
    with crm.db.write() as session:
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookDelivery.locked_until.is_(None),
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )


def next_due(crm: Crm) -> dt.datetime | None:
    """When the next pending delivery of an active endpoint is due (its lease ended)."""
    with crm.db.session() as session:
        moment = session.scalar(
            select(
                func.min(
                    func.coalesce(WebhookDelivery.locked_until, WebhookDelivery.next_attempt_at)
                )
            )
            .join_from(
                WebhookDelivery, WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
            )
            .where(WebhookDelivery.status == PENDING, WebhookEndpoint.active.is_(True))
        )
    return None if moment is None else _aware(moment)


def _aware(moment: dt.datetime | str) -> dt.datetime:
    # an aggregate may come back naive (SQLite) or, from some drivers, as text
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def prune_delivered(crm: Crm, now: dt.datetime | None = None) -> int:
    """Delete delivered deliveries older than ``webhooks_keep_days`` (0 keeps them all)."""
    days = crm.settings.webhooks_keep_days
    if days <= 0:
        return 0
    before = (now or utcnow()) - dt.timedelta(days=days)
    with crm.db.write() as session:
        return int(
            session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status == DELIVERED, WebhookDelivery.delivered_at < before
                )
            ).rowcount
        )


# --- in the background --------------------------------------------------------------------------


class _Background:
    """One daemon thread per server process: delivers what is due, sleeps until the next due
    time (or :data:`POLL_SECONDS`), and is woken after commits that queued deliveries."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted = threading.Event()
        self.crms: dict[int, Crm] = {}
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self, crm: Crm) -> None:
        with self.lock:
            self.crms[id(crm)] = crm
            if self.thread is None or not self.thread.is_alive():
                self.stopping = threading.Event()
                self.thread = threading.Thread(
                    target=self.run, args=(self.stopping,), name="crm-webhooks", daemon=True
                )
                self.thread.start()
        self.wanted.set()

    def wake(self) -> None:
        with self.lock:
            running = bool(self.crms)
        if running:
            self.wanted.set()

    def stop(self, crm: Crm | None, timeout: float) -> None:
        with self.lock:
            if crm is None:
                self.crms.clear()
            else:
                self.crms.pop(id(crm), None)
            if self.crms:
                return
            thread, self.thread = self.thread, None
            self.stopping.set()
        self.wanted.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def running(self) -> bool:
        with self.lock:
            return self.thread is not None and self.thread.is_alive()

    def run(self, stopping: threading.Event) -> None:
        pruned: dict[int, float] = {}
        while not stopping.is_set():
            with self.lock:
                crms = list(self.crms.values())
            wait = POLL_SECONDS
            for crm in crms:
                if stopping.is_set():
                    return
                try:
                    report = deliver_due(crm)
                    if time.monotonic() - pruned.get(id(crm), -PRUNE_SECONDS) >= PRUNE_SECONDS:
                        prune_delivered(crm)
                        pruned[id(crm)] = time.monotonic()
                except Exception:
                    log.exception("delivering webhooks in the background failed")
                    continue
                if report.next_due is not None:
                    idle = report.delivered + report.retrying + report.failed == 0
                    floor = 1.0 if idle else 0.0  # nothing could be sent: no busy loop
                    wait = min(wait, max(floor, (report.next_due - utcnow()).total_seconds()))
            self.wanted.wait(wait)
            self.wanted.clear()


_BACKGROUND = _Background()


def start(crm: Crm) -> None:
    """Run the background deliverer for ``crm`` in this process (the web server's lifespan)."""
    _BACKGROUND.start(crm)


def stop(crm: Crm | None = None, timeout: float = 20.0) -> None:
    """Stop delivering for ``crm`` (default: for all) in the background; once no CRM is left,
    the thread ends, waited for up to ``timeout`` seconds (a request may be under way)."""
    _BACKGROUND.stop(crm, timeout)


def running() -> bool:
    """Whether the background deliverer runs in this process."""
    return _BACKGROUND.running()


def wake(crm: Crm) -> None:
    """After a commit that queued deliveries: let the background deliverer send them now.

    Does nothing unless this process runs one (a web server with ``webhooks_in_server``);
    otherwise ``crm webhooks deliver`` or a server's next look sends them.
    """
    _BACKGROUND.wake()
