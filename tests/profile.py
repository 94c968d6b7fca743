"""How hard the security and reliability suites push: ``quick`` (CI) or ``long``.

``CRM_RELIABILITY_PROFILE=long`` (``make reliability``) raises example counts, process and
write counts, and load durations; every test reads its sizes through :func:`pick`.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

PROFILE = os.environ.get("CRM_RELIABILITY_PROFILE", "quick")
if PROFILE not in ("quick", "long"):
    raise RuntimeError(f"CRM_RELIABILITY_PROFILE must be quick or long, not {PROFILE!r}")
LONG = PROFILE == "long"


def pick(quick: T, long: T) -> T:
    """``quick`` in the default profile, ``long`` when ``CRM_RELIABILITY_PROFILE=long``."""
    return long if LONG else quick
