"""The world the API fuzzer runs in, and the business rules a schema cannot state.

``every_module_crm`` is a CRM with every built-in module enabled and their demo data (staff,
customers, orders, tickets, alerts…), so that generated ids often name real records.
``SEMANTIC_RULES`` lists the answers 422 to schema-valid requests that are right all the same:
rules across several fields, rules about stored data, tokens from earlier answers. Each names
its field and says why the OpenAPI document cannot express it, and ``NUL`` covers the NUL
character the document forbids in words; any other 422 to schema-valid data is a failure
(``schema_valid_rejection_explained``). ``mixes_invalid_parts`` spots the cases schemathesis
calls valid while they are not.
"""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import schemathesis
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core import auth, modules
from core.bootstrap import initialise
from core.customers import demo_data
from core.models import User
from core.normalize import CHANNELS
from core.runtime import Crm
from core.settings import load_settings
from core.web.app import NUL_ERROR, create_app

MODULES = ["operational", "analytical", "smart_sales", "collaborative"]
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "Admin-pass-123"
#: A salesperson of the demo data set (role sales, one team).
SALES = demo_data.DEMO_STAFF[1][0]
SECRET = "fuzz-secret-key-0123456789abcdef0123456789"
#: Customers of the demo data set: enough for every module's demo data, few enough to load fast.
DEMO_CUSTOMERS = 40
SEED = 20260410
#: Operations that end the credentials they are called with; each call gets a token of its own.
ENDS_CREDENTIALS = {"POST /api/auth/logout"}

_ANY = "*"
_RECORD = "names a record: whether it exists, and whether the user may see it, is stored data"
_RECORD_TYPE = "record types are registered by the enabled modules while the CRM runs"
_CONTACT = "e-mail addresses and phone numbers are parsed (phones for the CRM's region)"
_IDENTITY = "an identity's value is parsed by its channel's rules (" + _CONTACT + ")"
#: Why a NUL character is refused in any text (``core.web.app.NUL_ERROR``), schema or not.
NUL = "text never holds NUL (U+0000), which PostgreSQL cannot store; the document says so once"
_PERIOD = "the period from start to end spans at most 120 months: a rule across parameters"
#: (operation label, location, field) -> why a schema-valid value may be refused (422); the
#: label and the field (dotted for a nested one) may hold ``*`` wildcards.
SEMANTIC_RULES: dict[tuple[str, str, str], str] = {
    (_ANY, "query", "cursor"): "an opaque token from an earlier page; no schema says which"
    " strings are tokens",
    (_ANY, "query", "*_id"): _RECORD,
    (_ANY, "body", "*_id"): _RECORD,
    (_ANY, "query", "record_type"): _RECORD_TYPE,
    (_ANY, "body", "record_type"): _RECORD_TYPE,
    ("POST /api/customers", "body", "display_name"): "a customer needs display_name or"
    " given_name/family_name: a rule across fields",
    ("PATCH /api/customers/{customer_id}", "body", "display_name"): "a customer keeps"
    " display_name or given_name/family_name: a rule across fields and the stored customer",
    **{("POST /api/customers", "body", channel): _IDENTITY for channel in CHANNELS},
    ("POST /api/customers/{customer_id}/identities", "body", "value"): _IDENTITY,
    ("GET /api/customers/lookup", "query", "identity"): "exactly one of the identity parameters:"
    " a rule across parameters",
    ("GET /api/customers/lookup", "query", "*"): _IDENTITY,
    ("POST /api/operational/orders", "body", "total_minor"): "an order has lines or a"
    " total_minor: a rule across fields",
    ("POST /api/operational/activities", "body", "remind_at"): "the reminder comes before"
    " due_at: a rule across fields",
    ("* /api/operational/opportunities*", "body", "stage"): "stages are the stored pipeline's,"
    " and a new opportunity starts in an open one",
    ("POST /api/collaborative/handoffs", "body", "deadline"): "a deadline lies in the future:"
    " the time of the request",
    ("POST /api/collaborative/messages", "body", "mentions"): "people and teams mentioned are"
    " stored users and teams working on the record",
    ("PATCH /api/operational/orders/{order_id}", "body", "status"): "allowed status changes"
    " depend on the order's stored status",
    ("PATCH /api/operational/tickets/{ticket_id}", "body", "status"): "allowed status changes"
    " depend on the ticket's stored status",
    ("PUT /api/operational/sla-policies/{priority}", "body", "resolution_minutes"): "must not be"
    " shorter than first_response_minutes: a rule across fields",
    ("* /api/operational/mailings*", "body", "audience"): "an audience is a filter, a saved"
    " segment or a list of addresses and customer ids, checked against the stored ones; a"
    " mailing is scheduled only with one",
    ("POST /api/operational/mailings/{mailing_id}/audience-csv", "body", "file"): "the uploaded"
    " file's content (its e-mail addresses and customer ids)",
    ("* /api/analytical/segments*", "body", "definition*"): "a definition names at least one"
    " criterion, and its ranges hold (clv_min <= clv_max, within > before): rules across fields",
    ("PUT /api/collaborative/teams/{team_id}", "body", "kind"): "team kinds are the setting"
    " team_kinds, chosen per installation",
    ("GET /api/collaborative/feed", "query", "kinds"): "feed kinds are registered by the"
    " enabled modules while the CRM runs",
    ("GET /api/collaborative/handoffs", "query", "record_id"): "record_type and record_id come"
    " together: a rule across parameters",
    ("* /api/collaborative/partners*", "body", "website"): "an http or https address with a"
    " host name, checked by parsing it",
    ("* /api/collaborative/partners*", "body", "email"): _CONTACT,
    ("* /api/collaborative/partners*", "body", "phone"): _CONTACT,
    ("POST /api/smart_sales/alerts/{alert_id}/*", "body", "state"): "an alert moves on only from"
    " the states that allow it: its stored state",
    ("POST /api/smart_sales/runs", "body", "min_support"): "the smallest useful support depends"
    " on how many baskets the stored orders make",
    ("GET /api/smart_sales/performance/*", "query", "start"): _PERIOD,
    ("GET /api/smart_sales/performance/*", "query", "end"): _PERIOD,
}


def _crm(url: str, folder: Path) -> Crm:
    env = {
        "CRM_DATABASE_URL": url,
        "CRM_SECRET_KEY": SECRET,
        "CRM_BACKUP_DIR": str(folder / "backups"),
        "CRM_LOAD_PLUGINS": ",".join(MODULES),
        # The fuzzer registers no webhook, so there is nothing to deliver in the background.
        "CRM_WEBHOOKS_IN_SERVER": "false",
    }
    return Crm(load_settings(environ=env, cwd=folder))


@contextmanager
def every_module_crm(url: str, folder: Path, demo: bool = True) -> Iterator[Crm]:
    """A CRM on ``url`` with every built-in module enabled (and, with ``demo``, demo data)."""
    crm = _crm(url, folder)
    try:
        initialise(crm, ADMIN, ADMIN_PASSWORD)
        modules.enable(crm, MODULES)
        crm.refresh()
        if demo:
            demo_data.load(crm, DEMO_CUSTOMERS, SEED)
            demo_data.load_modules(crm, SEED)
        yield crm
    finally:
        crm.close()


class Pristine:
    """A database with every module and the demo data, and an administrator's token, kept
    untouched: each ``copy()`` is a fresh database cloned from it (a file copy on SQLite, a
    template on PostgreSQL), so that a stateful run replays its steps on the same data."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder, self.copies = url, folder, 0
        with every_module_crm(url, folder) as crm:
            self.headers = bearer(crm, ADMIN)

    @contextmanager
    def copy(self) -> Iterator[tuple[Crm, FastAPI]]:
        """A fresh copy of the database, its CRM and its app."""
        self.copies += 1
        source = make_url(self.url)
        if source.get_backend_name() == "sqlite":
            path = self.folder / f"copy-{self.copies}.db"
            shutil.copyfile(str(source.database), path)
            with _opened(f"sqlite:///{path}", self.folder) as opened:
                yield opened
            path.unlink()
            return
        name = f"{source.database}_{self.copies}"
        admin = source.set(drivername="postgresql", database="postgres")
        admin_url = admin.render_as_string(hide_password=False)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"')
        try:
            with _opened(
                source.set(database=name).render_as_string(hide_password=False), self.folder
            ) as opened:
                yield opened
        finally:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _opened(url: str, folder: Path) -> Iterator[tuple[Crm, FastAPI]]:
    crm = _crm(url, folder)
    try:
        yield crm, create_app(crm)
    finally:
        crm.close()


def bearer(crm: Crm, email: str) -> dict[str, str]:
    """An ``Authorization`` header carrying a new API token of the user ``email``."""
    with crm.db.write() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        secret = auth.create_token(session, user, "fuzz").secret
    return {"Authorization": f"Bearer {secret}"}


def load_schema() -> Any:
    """The OpenAPI schema of the app with every module enabled, loaded by schemathesis.

    Built from a throwaway CRM when the test module is imported, as pytest collects one test
    per operation; the tests then send each case to the app of their own database.
    """
    with tempfile.TemporaryDirectory(prefix="crm-fuzz-schema-") as name:
        folder = Path(name)
        with every_module_crm(f"sqlite:///{folder / 'crm.db'}", folder, demo=False) as crm:
            app = create_app(crm)
            config = schemathesis.Config.from_dict({"seed": SEED})
            return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def validate(case: Any, response: Any, sent: dict[str, Any], recorder: Any = None) -> None:
    """Run every default check on ``response``; a 422 to schema-valid data passes only when
    ``SEMANTIC_RULES`` explains each refused field.

    ``sent`` holds the transport arguments of the call (``app``, ``headers``): the checks that
    repeat a request (``ignored_auth``) send theirs the same way.
    """
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    args = {"headers": sent.get("headers"), "transport_kwargs": sent, "recorder": recorder}
    case.validate_response(response, excluded_checks=[positive_data_acceptance], **args)
    if mixes_invalid_parts(case):
        return
    if not schema_valid_rejection_explained(
        case.operation.label, response.status_code, _json(response)
    ):
        case.validate_response(response, checks=[positive_data_acceptance], **args)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def mixes_invalid_parts(case: Any) -> bool:
    """Whether a case schemathesis calls valid carries an invalid part all the same.

    Schemathesis 4.32's coverage phase varies one parameter of a valid case and may keep a
    body drawn as invalid (``0`` for an object, say) while still labelling the case valid;
    the valid-data check then blames the API for refusing an invalid body.
    Likewise a link between operations may fill a path parameter with a ``null`` it found in
    an answer (a customer without a company): ``/customers/None/...`` is no valid request.
    """
    meta = case.meta
    if any(value is None for value in (case.path_parameters or {}).values()):
        return True
    return meta is not None and any(part.mode.is_negative for part in meta.components.values())


def schema_valid_rejection_explained(label: str, status: int, body: Any) -> bool:
    """Whether a 422 to a schema-valid request names only fields of ``SEMANTIC_RULES``."""
    if status != 422 or not isinstance(body, dict) or not isinstance(body.get("detail"), list):
        return False
    errors = body["detail"]
    return bool(errors) and all(_explained(label, error) for error in errors)


def _explained(label: str, error: Any) -> bool:
    if isinstance(error, dict) and error.get("type") == NUL_ERROR:
        return True  # NUL
    if not isinstance(error, dict) or error.get("type") != "value_error":
        return False  # pydantic's own errors mean the schema and the validation disagree
    loc = error.get("loc")
    if not isinstance(loc, list) or len(loc) < 2:
        return False
    where, field = loc[0], ".".join(str(part) for part in loc[1:])
    return any(
        fnmatch.fnmatchcase(label, rule_label)
        and where == rule_where
        and fnmatch.fnmatchcase(field, rule_field)
        for rule_label, rule_where, rule_field in SEMANTIC_RULES
    )
