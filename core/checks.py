"""The pre-deployment checklist: automatic checks and attestations from the core and modules.

CRM projects fail for lack of training and planning as often as for technical reasons, so an
item is of one of four categories (technical, data, people, process). Items with a ``check``
function are evaluated; items without one are *attestations*: open until a person confirms them
with ``crm check --ack ID --by EMAIL``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.runtime import Crm

LEVELS = ("info", "warning", "error", "critical")
CATEGORIES = ("technical", "data", "people", "process")
STATUSES = ("ok", "open", "attested", "silenced")
ID_RE = re.compile(r"^(?P<module>[a-z][a-z0-9_]*)\.[A-Z]\d{3}$")

#: A check returns ``None`` or ``True`` when all is well; ``False`` or a string saying what is
#: wrong when the item is open.
CheckFunction = Callable[["Crm"], "bool | str | None"]


@dataclass(frozen=True)
class CheckItem:
    """One checklist item. ``id`` is ``<module>.<letter><3 digits>``, e.g. ``core.E001``."""

    id: str
    level: str
    category: str
    message: str
    hint: str = ""
    check: CheckFunction | None = None
    deploy: bool = False

    @property
    def is_attestation(self) -> bool:
        """Whether a person confirms this item instead of a function."""
        return self.check is None

    def validate(self, module: str) -> None:
        """Raise ``ValueError`` if the item is malformed or not namespaced by ``module``."""
        match = ID_RE.match(self.id)
        if not match:
            raise ValueError(f"checklist item id {self.id!r} is not like '{module}.W001'")
        if match["module"] != module:
            raise ValueError(f"checklist item {self.id} must start with '{module}.'")
        if self.level not in LEVELS:
            raise ValueError(f"checklist item {self.id}: level must be one of {LEVELS}")
        if self.category not in CATEGORIES:
            raise ValueError(f"checklist item {self.id}: category must be one of {CATEGORIES}")


@dataclass
class CheckResult:
    """An item's status at the time of the run."""

    id: str
    level: str
    category: str
    module: str
    message: str
    hint: str
    status: str
    detail: str = ""
    attested_by: str | None = None
    attested_at: str | None = None
    attestation: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return asdict(self)


def settings_valid(module: str) -> CheckFunction:
    """A check function for a module's checklist: ``module``'s settings (its section of
    crm.toml, its ``CRM_<MODULE>_*`` variables) are valid; when not, says which one is wrong."""

    def check(crm: Crm) -> str | None:
        from core.errors import SettingsError

        try:
            crm.module_settings(module)
        except SettingsError as exc:
            return str(exc)
        return None

    return check


def level_rank(level: str) -> int:
    """Order of a level: info < warning < error < critical."""
    return LEVELS.index(level)


def collect_items(
    crm: Crm, module: str | None = None
) -> tuple[list[tuple[str, CheckItem]], list[CheckResult]]:
    """Items of the core and every enabled module, with results for modules whose hook failed."""
    items: list[tuple[str, CheckItem]] = []
    broken: list[CheckResult] = []
    for result in crm.collect("checklist_items", crm=crm):
        if module is not None and result.plugin != module:
            continue
        try:
            if result.error is not None:
                raise result.error
            for item in result.value or ():
                item.validate(result.plugin)
                items.append((result.plugin, item))
        except Exception as exc:
            broken.append(
                CheckResult(
                    id=f"{result.plugin}.checklist",
                    level="error",
                    category="technical",
                    module=result.plugin,
                    message=f"module {result.plugin} could not list its checklist items",
                    hint="fix or disable the module",
                    status="open",
                    detail=f"{type(exc).__name__}: {exc}",
                )
            )
    return items, broken


def run(crm: Crm, deploy: bool = False, module: str | None = None) -> list[CheckResult]:
    """Evaluate the checklist; deployment-only items are included when ``deploy`` is true."""
    if module is not None and module != "core" and module not in crm.enabled_modules():
        from core.errors import NotFoundError

        raise NotFoundError(f"unknown or disabled module {module!r}")
    items, results = collect_items(crm, module)
    attestations = latest_attestations(crm)
    silenced = set(crm.settings.silenced_checks)
    for owner, item in items:
        if item.deploy and not deploy:
            continue
        result = CheckResult(
            id=item.id,
            level=item.level,
            category=item.category,
            module=owner,
            message=item.message,
            hint=item.hint,
            status="ok",
            attestation=item.is_attestation,
        )
        if item.id in silenced:
            result.status = "silenced"
        elif item.is_attestation:
            ack = attestations.get(item.id)
            if ack is None:
                result.status = "open"
            else:
                result.status = "attested"
                result.attested_by, result.attested_at = ack["by"], ack["at"]
                result.detail = ack["note"]
        else:
            _evaluate(crm, item, result)
        results.append(result)
    results.sort(key=lambda r: (-level_rank(r.level), r.id))
    return results


def _evaluate(crm: Crm, item: CheckItem, result: CheckResult) -> None:
    try:
        outcome = item.check(crm)  # type: ignore[misc]
    except Exception as exc:
        result.status = "open"
        result.detail = f"the check itself failed: {type(exc).__name__}: {exc}"
        return
    if outcome is None or outcome is True:
        return
    result.status = "open"
    if isinstance(outcome, str):
        result.detail = outcome


def failing(results: Iterable[CheckResult], fail_level: str) -> list[CheckResult]:
    """Open results at or above ``fail_level``."""
    threshold = level_rank(fail_level)
    return [r for r in results if r.status == "open" and level_rank(r.level) >= threshold]


def latest_attestations(crm: Crm) -> dict[str, dict[str, str]]:
    """The newest attestation of each item."""
    from sqlalchemy import select

    from core.models import Attestation

    found: dict[str, dict[str, str]] = {}
    with crm.db.session() as session:
        for row in session.scalars(select(Attestation).order_by(Attestation.at, Attestation.id)):
            found[row.check_id] = {"by": row.by_email, "at": row.at.isoformat(), "note": row.note}
    return found


def attest(crm: Crm, check_id: str, by_email: str, note: str = "") -> None:
    """Record that ``by_email`` confirms attestation item ``check_id``.

    Raises ``NotFoundError`` for an unknown item or user, ``ValueError`` for an automatic check.
    """
    from sqlalchemy import select

    from core import audit
    from core.errors import NotFoundError
    from core.models import Attestation, User

    items, _ = collect_items(crm)
    by_id = {item.id: item for _, item in items}
    if check_id not in by_id:
        raise NotFoundError(f"no checklist item {check_id!r} among the enabled modules")
    if not by_id[check_id].is_attestation:
        raise ValueError(f"{check_id} is an automatic check; fix what it reports instead")
    email = by_email.strip().lower()
    with crm.db.write() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None or not user.is_active:
            raise NotFoundError(f"no active user with e-mail {by_email!r}")
        session.add(Attestation(check_id=check_id, by_email=email, note=note))
        audit.record(
            session,
            "attest",
            "checklist",
            check_id,
            after={"by": email, "note": note},
            actor=audit.Actor(label=email, user_id=user.id),
        )
