"""``crm analytics refresh``: every snapshot recomputed as of one date, step by step.

Each step is a function ``(crm, session, as_of) -> Run`` that computes one kind of snapshot and
stores it with :func:`plugins.analytical.snapshots.replace_run`. Steps run in the order below,
each in its own transaction, so later steps read what earlier ones stored (churn risk reads the
lifetime value's probability alive; KPIs read segment sizes).
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.runtime import Crm
    from plugins.analytical.models import Run


@dataclass(frozen=True)
class Step:
    """One snapshot kind: its name, what it is, and ``module:function`` computing it."""

    name: str
    label: str
    target: str

    def function(self) -> Callable[[Crm, Session, dt.date], Run]:
        """The step's function, imported on first use."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


STEPS = (
    Step("rfm", "RFM scores and segments", "plugins.analytical.rfm:refresh_step"),
    Step("clv", "lifetime value and holdout check", "plugins.analytical.clv_snapshot:refresh_step"),
    Step("classes", "customer classes", "plugins.analytical.classes:refresh_step"),
    Step(
        "profit", "profitability and value tiers", "plugins.analytical.profitability:refresh_step"
    ),
    Step(
        "behaviour",
        "cohorts, purchase rhythm, churn risk",
        "plugins.analytical.behaviour:refresh_step",
    ),
    Step("forecast", "pipeline and revenue forecasts", "plugins.analytical.forecast:refresh_step"),
    Step("kpi", "KPI series", "plugins.analytical.kpi:refresh_step"),
)


def step_names() -> list[str]:
    """The names of the steps, in order."""
    return [step.name for step in STEPS]


@dataclass(frozen=True)
class Done:
    """A finished step: its stored run and how long it took."""

    step: Step
    run_id: int
    rows: int
    seconds: float


def run_steps(crm: Crm, as_of: dt.date, only: list[str] | None = None) -> Iterator[Done]:
    """Run the steps (all, or those named in ``only``) as of ``as_of``, each committed before
    it is yielded. A step that fails raises; the snapshots committed before it stay."""
    for step in STEPS:
        if only and step.name not in only:
            continue
        started = time.perf_counter()
        with crm.db.write() as session:
            run = step.function()(crm, session, as_of)
            session.flush()
            run_id, rows = run.id, run.rows
        yield Done(step, run_id, rows, time.perf_counter() - started)
