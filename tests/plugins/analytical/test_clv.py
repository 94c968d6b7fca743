"""Customer lifetime value: BG/NBD and Gamma-Gamma fits, the calibration summary, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from plugins.analytical import clv
from plugins.analytical.commands import analytics
from tests.plugins.operational.conftest import ops_crm  # noqa: F401 (a fixture)

# CDNOW estimates, weekly: [BG/NBD] table 1 and [GG] (Fader, Hardie & Lee 2005).
BG = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PLUGINS = "operational,analytical"
UTC = dt.UTC

# Parameter recovery: how close is close enough. With 5,000 CDNOW-like customers (T of 27 to
# 39 weeks) the estimates of a and b vary by 23% and 30% (standard deviation across 20 seeds,
# measured with these functions): a and b are weakly identified by short histories, so a 15%
# tolerance would hold by luck of the seed. Over one to two years, the relative standard
# deviations measured across 20 seeds at 40,000 customers are r 0.9%, alpha 1.2%, a 3.1%,
# b 4.4% and, for Gamma-Gamma with 1 + Poisson(2) purchases, p 3.9%, q 1.3%, v 5.0% (alpha
# 1.4% across 30 seeds at 50,000). With 50,000 customers, 15% is at least three standard
# deviations of every parameter: the check fails for a biased fit, not for sampling noise.
CUSTOMERS = 50_000
TOLERANCE = 0.15


def _relative_errors(fitted: dict[str, float], true: dict[str, float]) -> dict[str, float]:
    return {k: abs(fitted[k] / true[k] - 1) for k in true}


def test_bgnbd_recovers_the_parameters_it_simulates_from():
    rng = np.random.default_rng(20050401)
    T = rng.uniform(52, 104, CUSTOMERS)
    frequency, recency = clv.simulate_bgnbd(BG, T, rng)
    params, log_likelihood = clv.fit_bgnbd(frequency, recency, T)
    errors = _relative_errors(params, BG)
    assert max(errors.values()) < TOLERANCE, (params, errors)
    truth = clv.bgnbd_log_likelihood(BG, frequency, recency, T).sum()
    assert log_likelihood >= truth  # the maximum is at least the likelihood of the truth
    assert log_likelihood == pytest.approx(
        clv.bgnbd_log_likelihood(params, frequency, recency, T).sum()
    )


def test_gamma_gamma_recovers_the_parameters_it_simulates_from():
    rng = np.random.default_rng(20051101)
    frequency = 1 + rng.poisson(2, CUSTOMERS)
    monetary = clv.simulate_gamma_gamma(GG, frequency, rng)
    params, log_likelihood = clv.fit_gamma_gamma(frequency, monetary)
    errors = _relative_errors(params, GG)
    assert max(errors.values()) < TOLERANCE, (params, errors)
    assert log_likelihood >= clv.gamma_gamma_log_likelihood(GG, frequency, monetary).sum()


def test_gamma_gamma_leaves_out_customers_without_repeat_purchases():
    rng = np.random.default_rng(7)
    frequency = 1 + rng.poisson(2, 2_000)
    monetary = clv.simulate_gamma_gamma(GG, frequency, rng)
    with_zeros = clv.fit_gamma_gamma(np.r_[frequency, [0, 0, 0]], np.r_[monetary, [0, 5, 9]])
    assert with_zeros == clv.fit_gamma_gamma(frequency, monetary)


def test_too_few_repeat_customers_is_refused():
    with pytest.raises(clv.NotEnoughData, match="19 customers with repeat purchases"):
        clv.fit_bgnbd(np.r_[np.ones(19), np.zeros(500)], np.ones(519), np.full(519, 10.0))
    with pytest.raises(clv.NotEnoughData, match="at least 20"):
        clv.fit_gamma_gamma(np.ones(5), np.ones(5))


def test_expected_purchases_match_the_paper():
    """[BG/NBD] section 5: x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 in 39 weeks."""
    paper = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    expected = clv.expected_purchases(paper, 39, np.r_[2], np.r_[30.43], np.r_[38.86])
    assert expected[0] == pytest.approx(1.226, abs=5e-4)


def test_probability_alive():
    frequency = np.r_[0, 3, 3]
    recency = np.r_[0.0, 35.0, 5.0]  # the same frequency: bought recently, long ago
    T = np.r_[38.0, 38.0, 38.0]
    alive = clv.probability_alive(BG, frequency, recency, T)
    assert alive[0] == 1.0
    assert 0 < alive[2] < alive[1] < 1
    assert alive[2] < 0.2 < 0.8 < alive[1]


def test_expected_spend_and_clv():
    mean = GG["p"] * GG["v"] / (GG["q"] - 1)
    spend = clv.expected_spend(GG, np.r_[0, 1, 50], np.r_[0.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(mean)  # no repeat purchase: the population mean
    assert mean < spend[1] < spend[2] < 100  # shrunk towards the population mean, less so
    args = (np.r_[0, 2, 5], np.r_[0.0, 20.0, 30.0], np.r_[38.0, 38.0, 38.0], np.r_[0, 30, 40.0])
    plain = clv.clv(BG, GG, *args, horizon=52)
    steps = clv.expected_purchases(BG, 52, *args[:3]) * clv.expected_spend(GG, args[0], args[3])
    assert plain == pytest.approx(steps)
    discounted = clv.clv(BG, GG, *args, horizon=52, discount_rate=0.01)
    assert np.all(discounted < plain) and np.all(discounted > plain / 1.01**52)
    with pytest.raises(ValueError, match="not finite"):
        clv.expected_spend({"p": 1, "q": 0.9, "v": 1}, np.r_[1], np.r_[1.0])


# --- the calibration summary in the database -----------------------------------------------


def _customer(session, crm, name: str) -> int:
    from core.customers import service

    return service.create(session, crm, {"display_name": name}).id


def _order(session, customer: int, ref: str, at: dt.datetime, cents: int, status="paid"):
    from plugins.operational.models import Order

    session.add(
        Order(
            ref=ref,
            customer_id=customer,
            placed_at=at,
            status=status,
            currency="USD",
            total_minor=cents,
        )
    )


def _hand_made(crm) -> tuple[int, int, int, int]:
    """Four customers: see ``test_summary`` for what each should give."""
    ict = dt.timezone(dt.timedelta(hours=7))
    with crm.db.write() as session:
        a, b, c, d = (_customer(session, crm, n) for n in ("An", "Bình", "Châu", "Dũng"))
        _order(session, a, "A1", dt.datetime(2026, 1, 5, 0, 0, tzinfo=UTC), 1000)
        _order(session, a, "A2", dt.datetime(2026, 1, 6, 6, 30, tzinfo=ict), 500)  # Jan 5 UTC
        _order(session, a, "A3", dt.datetime(2026, 1, 12, 8, tzinfo=UTC), 2000)
        _order(session, a, "A4", dt.datetime(2026, 1, 12, 9, tzinfo=UTC), 9999, "cancelled")
        _order(session, a, "A5", dt.datetime(2026, 1, 26, 23, 59, tzinfo=UTC), 1000, "placed")
        _order(session, a, "A6", dt.datetime(2026, 1, 27, 0, 1, tzinfo=ict), 2000)  # Jan 26 UTC
        _order(session, a, "A7", dt.datetime(2026, 2, 2, tzinfo=UTC), 7777, "returned")
        _order(session, a, "A8", dt.datetime(2026, 4, 1, tzinfo=UTC), 5555)  # after --until
        _order(session, b, "B1", dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC), 4200)
        _order(session, c, "C1", dt.datetime(2026, 2, 1, tzinfo=UTC), 1234, "cancelled")
        _order(session, d, "D1", dt.datetime(2026, 3, 1, 12, tzinfo=UTC), 100)
        _order(session, d, "D2", dt.datetime(2026, 3, 31, 1, tzinfo=UTC), 350)
    return a, b, c, d


def test_summary(ops_crm):  # noqa: F811
    a, b, _c, d = _hand_made(ops_crm)
    with ops_crm.db.session() as session:
        weeks = clv.summary(session, dt.date(2026, 3, 31), "week")
        days = clv.summary(session, dt.date(2026, 3, 31), "day")
    # A: purchases on Jan 5 (10.00 + 5.00), Jan 12 (20.00; the cancelled order ignored) and
    # Jan 26 (10.00 + 20.00); the returned order and the one after the period do not count.
    # T counts Jan 5 to Mar 31 inclusive: 86 days. B: one purchase on the last day: T = 1 day.
    # C: only a cancelled order: not a customer of the summary. D: Mar 1 and Mar 31.
    assert days.customer_id.tolist() == [a, b, d]
    assert days.frequency.tolist() == [2, 0, 1]
    assert days.recency.tolist() == [21.0, 0.0, 30.0]
    assert days.T.tolist() == [86.0, 1.0, 31.0]
    assert days.monetary.tolist() == [25.0, 0.0, 3.5]  # mean repeat purchase, dollars
    assert days.currency == "USD" and days.repeat_customers == 2
    assert weeks.frequency.tolist() == [2, 0, 1]
    assert weeks.recency == pytest.approx([3.0, 0.0, 30 / 7])
    assert weeks.T.tolist() == pytest.approx([86 / 7, 1 / 7, 31 / 7])
    assert weeks.monetary.tolist() == days.monetary.tolist()
    with ops_crm.db.session() as session:
        earlier = clv.summary(session, dt.date(2026, 1, 12), "day")
    assert earlier.customer_id.tolist() == [a]
    assert (earlier.frequency[0], earlier.recency[0], earlier.T[0]) == (1, 7.0, 8.0)


def test_summary_refuses_mixed_currencies(ops_crm):  # noqa: F811
    from plugins.operational.models import Order

    a, *_ = _hand_made(ops_crm)
    with ops_crm.db.write() as session:
        session.add(
            Order(
                ref="V1",
                customer_id=a,
                placed_at=dt.datetime(2026, 3, 3, tzinfo=UTC),
                status="paid",
                currency="VND",
                total_minor=150_000,
            )
        )
    with ops_crm.db.session() as session:
        with pytest.raises(ValueError, match=r"several currencies \(USD, VND\)"):
            clv.summary(session, dt.date(2026, 3, 31), "day")
        vnd = clv.summary(session, dt.date(2026, 3, 31), "day", currency="vnd")
        with pytest.raises(ValueError, match="unknown unit"):
            clv.summary(session, dt.date(2026, 3, 31), "month")
    assert vnd.customer_id.tolist() == [a] and vnd.currency == "VND"


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def clv_crm(make_crm):
    """A CRM with ``analytical`` (and so ``operational``) enabled."""
    from core import modules
    from core.bootstrap import initialise

    crm = make_crm(load_plugins=PLUGINS)
    initialise(crm, "admin@example.com", "Admin-pass-123")
    assert set(modules.enable(crm, ["analytical"])) == {"operational", "analytical"}
    crm.refresh()
    assert {"operational", "analytical"} <= set(crm.enabled_modules())
    return crm


def _simulated_orders(crm, customers: int = 150, seed: int = 3) -> int:
    """Orders of ``customers`` customers drawn from BG/NBD and Gamma-Gamma (weeks, USD)."""
    from plugins.operational.models import Order

    rng = np.random.default_rng(seed)
    start = dt.datetime(2025, 1, 1, 9, tzinfo=UTC)
    count = 0
    with crm.db.write() as session:
        for i in range(customers):
            customer = _customer(session, crm, f"Khách {i}")
            rate, dropout = rng.gamma(BG["r"], 1 / BG["alpha"]), rng.beta(BG["a"], BG["b"])
            nu = rng.gamma(GG["q"], 1 / GG["v"])
            week = rng.uniform(0, 12)
            while week < 52:
                cents = int(rng.gamma(GG["p"], 1 / nu) * 100)
                at = start + dt.timedelta(weeks=week)
                session.add(
                    Order(ref=f"S{count}", customer_id=customer, placed_at=at, status="paid",
                          currency="USD", total_minor=cents)
                )  # fmt: skip
                count += 1
                if at > start + dt.timedelta(weeks=12) and rng.random() < dropout:
                    break  # (approximately: drops out after a repeat purchase)
                week += rng.exponential(1 / rate)
    return count


def _invoke(cli, *args: str):
    """Run the ``analytics`` group in-process against the test database."""
    return CliRunner().invoke(analytics, list(args), env={**cli.env, "CRM_LOAD_PLUGINS": PLUGINS})


def test_cli_fit_and_predict(clv_crm, cli, tmp_path):
    _simulated_orders(clv_crm)
    result = _invoke(cli, "clv", "fit", "--until", "2025-12-31", "--format", "json")
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.output)
    assert fitted["customers"] == 150 and fitted["unit"] == "week"
    assert fitted["repeat_customers"] >= 20 and fitted["currency"] == "USD"
    assert set(fitted["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(fitted["gamma_gamma"]) == {"p", "q", "v", "log_likelihood"}
    assert all(v > 0 for k, v in fitted["bgnbd"].items() if k != "log_likelihood")

    out = tmp_path / "clv.csv"
    args = ("clv", "predict", "--horizon", "26", "--until", "2025-12-31", "--out", str(out))
    result = _invoke(cli, *args)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(
        (
            "customer_id",
            "frequency",
            "recency",
            "T",
            "expected_purchases",
            "probability_alive",
            "expected_spend_minor",
            "clv_minor",
        )
    )
    assert len(rows) == 150
    for row in rows:
        assert 0 < float(row["probability_alive"]) <= 1
        assert float(row["recency"]) < float(row["T"])
        assert int(row["clv_minor"]) >= 0 and int(row["expected_spend_minor"]) > 0
        if row["frequency"] == "0":
            assert float(row["probability_alive"]) == 1.0

    discounted = _invoke(cli, *args[:-2], "--discount-rate", "0.01")
    assert discounted.exit_code == 0, discounted.output
    lower = list(csv.DictReader(io.StringIO(discounted.stdout)))
    assert [r["customer_id"] for r in lower] == [r["customer_id"] for r in rows]
    assert all(int(d["clv_minor"]) <= int(r["clv_minor"]) for d, r in zip(lower, rows, strict=True))
    assert sum(int(d["clv_minor"]) for d in lower) < sum(int(r["clv_minor"]) for r in rows)

    table = _invoke(cli, "clv", "fit", "--until", "2025-12-31", "--unit", "day")
    assert table.exit_code == 0 and "alpha" in table.output and "150 customers" in table.output


def test_cli_too_little_data(ops_crm, cli):  # noqa: F811
    _hand_made(ops_crm)
    for command in ("fit", "predict --horizon 4"):
        result = CliRunner().invoke(
            analytics,
            ["clv", *command.split(), "--until", "2026-03-31"],
            env={**cli.env, "CRM_LOAD_PLUGINS": "operational"},
        )
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            "Error: too little data to fit BG/NBD: 2 customers with repeat purchases, "
            "at least 20 needed"
        ]


def test_cli_registered_under_crm(clv_crm, cli):
    """Through ``crm`` itself."""
    _simulated_orders(clv_crm, customers=60)
    result = cli("analytics", "clv", "fit", "--until", "2025-12-31", "--format", "json",
                 CRM_LOAD_PLUGINS=PLUGINS)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["customers"] == 60
