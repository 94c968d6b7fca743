"""Settings of the collaborative module: ``[collaborative]`` in ``crm.toml`` or
``CRM_COLLABORATIVE_<NAME>``. ``crm settings --module collaborative`` lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import SettingsError
from core.settings import ModuleSetting, boolean, positive_int, whole_number

if TYPE_CHECKING:
    from core.runtime import Crm


def _hour(name: str, value: object) -> int:
    return whole_number(name, value, 0, 23)


def _kinds(name: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    kinds = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    if not kinds or any(not k.replace("_", "").isalnum() or len(k) > 20 for k in kinds):
        raise SettingsError(f"{name}: give kinds of department such as 'sales,service,finance'")
    return kinds


DECLARATIONS = (
    ModuleSetting(
        "team_kinds",
        ("sales", "service", "marketing", "finance", "operations", "other"),
        _kinds,
        "kinds of department, comma-separated",
    ),
    ModuleSetting(
        "handoff_deadline_hours", 48, positive_int, "default time a team has to accept a hand-off"
    ),
    ModuleSetting(
        "digest_hour",
        7,
        _hour,
        "hour of the day (in the CRM's timezone) after which daily digests go out",
    ),
    ModuleSetting(
        "send_in_background",
        True,
        boolean,
        "web servers mail immediate notifications from a background thread after commit",
    ),
    ModuleSetting(
        "max_message_length", 10_000, positive_int, "longest note or comment, in characters"
    ),
)


def settings(crm: Crm) -> dict[str, Any]:
    """The module's settings, validated, with defaults."""
    return crm.module_settings("collaborative")
