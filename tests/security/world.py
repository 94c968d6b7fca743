"""The access-matrix world: six personas, records of every kind, and the database kept honest.

A :class:`World` is a CRM with every built-in module enabled, two teams and the personas of
the access matrix (:data:`PERSONAS`). Module builders (``tests/security/world_<module>.py``,
each with ``build(world)``) add records owned by ``owner`` that carry :data:`MARKER` in their
text fields, records of ``other_team`` that carry :data:`MINE`, and register what the matrix
needs to call every route: a value for each path parameter (:meth:`World.param`), records of
the generic UI resources (:meth:`World.record`) and valid request bodies (:meth:`World.body`).

The world also reads the database itself: :meth:`World.fingerprint` (every table except those
recording the attempt: the audit log), :meth:`World.snapshot` and :meth:`World.restore`, which
puts every reflected table (and PostgreSQL's sequences) back as the snapshot had it, so that
an allowed write by one persona leaves the next persona the same world.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, and_, delete, insert, select, text, tuple_, update

from tests.web.conftest import Browser

PERSONAS = ("anonymous", "owner", "same_team", "other_team", "manager", "admin")
#: Who sees what ``owner`` owns (team A and the administrator).
SEEING = frozenset({"owner", "same_team", "manager", "admin"})
#: Every signed-in persona.
EVERYONE = frozenset(PERSONAS[1:])
#: Who sees what ``other_team`` owns (team B and the administrator).
OTHERS = frozenset({"other_team", "admin"})
#: In text fields of records ``other_team`` must never be shown.
MARKER = "Zqxleak"
#: In text fields of ``other_team``'s own records.
MINE = "Zqxmine"
#: The modules of the world, in the order their builders run.
MODULES = ("core", "operational", "analytical", "collaborative", "smart_sales")
PLUGINS = MODULES[1:]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Admin-pass-123"
PASSWORD = "Password-123!"
BASE_URL = "http://testserver"
ORIGIN = {"Origin": BASE_URL}
#: Tables that record an attempt itself (who tried what), left out of fingerprints.
ATTEMPT_TABLES = frozenset({"core_audit_log"})
#: persona -> (e-mail, display name, team, roles) of the personas other than the administrator.
PEOPLE = {
    "owner": ("owner@example.com", "Olga Owner", "alpha", ["sales"]),
    "same_team": ("mate@example.com", "Mateo Mate", "alpha", ["sales"]),
    "other_team": ("rival@example.com", "Rita Rival", "beta", ["sales"]),
    "manager": ("boss@example.com", "Bao Boss", "alpha", ["manager"]),
}
TEAMS = {"alpha": "Team A", "beta": "Team B"}


@dataclass
class Persona:
    """A kind of caller of the matrix; ``anonymous`` has no user, token or permissions."""

    name: str
    user_id: int | None
    email: str | None
    password: str | None
    token: str | None
    permissions: frozenset[str]


@dataclass
class Ref:
    """A value for a path parameter, and the personas whose record rules include its record.

    ``acting``: when only some of those may change the record (its author edits a message,
    the receiving team accepts a hand-off), who they are; the others who see it get 403 from
    the routes that write (POST, PUT, PATCH, DELETE). ``None``: everyone who sees it.
    """

    value: str | int
    visible_to: frozenset[str] = SEEING
    acting: frozenset[str] | None = None


@dataclass
class _ParamValue:
    ref: Ref
    prefix: str | None


Payload = dict[str, Any] | Callable[["World"], dict[str, Any]]


def _frozen(names: Iterable[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def _plain(path: str) -> str:
    """``path`` without parameter converters (``{record_id:int}`` -> ``{record_id}``)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


@dataclass
class Snapshot:
    """Every row of every table (by primary key) and the sequences, as they were."""

    rows: dict[str, dict[tuple, tuple]]
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)


class World:
    """The CRM of the access matrix with its personas, records and registered route inputs."""

    def __init__(self, crm: Any, app: Any) -> None:
        self.crm = crm
        self.app = app
        self.personas: dict[str, Persona] = {}
        self.team_ids: dict[str, int] = {}
        self.customer_id: int = 0
        self.other_customer_id: int = 0
        self.params: dict[str, list[_ParamValue]] = {}
        self.records: dict[str, list[Ref]] = {}
        self.bodies: dict[tuple[str, str], Payload] = {}
        self.body_refs: dict[tuple[str, str], Ref] = {}
        self.queries: list[tuple[str, str, Ref]] = []
        #: module -> the error its builder raised (the matrix fails that module's test with it).
        self.build_errors: dict[str, str] = {}
        self._api: dict[str, TestClient] = {}
        self._ui: dict[str, Browser] = {}
        self._metadata: MetaData | None = None
        self._clients = contextlib.ExitStack()

    # --- registration, for builders ---------------------------------------------------------

    def param(
        self,
        name: str,
        value: str | int,
        visible_to: Iterable[str] = SEEING,
        *,
        prefix: str | None = None,
        acting: Iterable[str] | None = None,
    ) -> None:
        """A value for the path parameter ``{name}``; ``prefix`` limits it to route paths
        starting with it (generic parts filled in, e.g. ``/collaborative/chatter/customer/``).

        A parameter may get several values, each tried: the matrix sends the n-th values of
        a route's parameters together, so register related values (a customer, then its
        identity) in the same order (owner's first, then other_team's).
        """
        ref = Ref(value, frozenset(visible_to), _frozen(acting))
        self.params.setdefault(name, []).append(_ParamValue(ref, prefix))

    def record(
        self,
        resource: str,
        record_id: int,
        visible_to: Iterable[str] = SEEING,
        *,
        acting: Iterable[str] | None = None,
    ) -> None:
        """A record of the generic UI resource or record type ``resource``."""
        ref = Ref(record_id, frozenset(visible_to), _frozen(acting))
        self.records.setdefault(resource, []).append(ref)

    def body(
        self,
        method: str,
        path: str,
        payload: Payload,
        visible_to: Iterable[str] | None = None,
        *,
        acting: Iterable[str] | None = None,
    ) -> None:
        """A valid body for ``METHOD path`` (the path template of the route table): JSON for
        API routes, form fields for UI routes; a callable gets the world when it is sent.

        ``visible_to``: when the payload names a record (``{"customer_id": ...}``), who may see
        it; the others get 404 as for a record in the path (declare the route scoped).
        ``acting`` as for :class:`Ref`.
        """
        key = (method.upper(), path)
        self.bodies[key] = payload
        if visible_to is not None or acting is not None:
            seen = EVERYONE if visible_to is None else frozenset(visible_to)
            self.body_refs[key] = Ref(f"body of {method} {path}", seen, _frozen(acting))

    # --- lookup, for the matrix -------------------------------------------------------------

    def refs(self, name: str, path: str) -> list[Ref]:
        """The values registered for ``{name}`` that apply to ``path``: those of the longest
        matching prefix, else those registered without a prefix."""
        values = self.params.get(name, [])
        prefixed = [v for v in values if v.prefix is not None and path.startswith(v.prefix)]
        if prefixed:
            longest = max(len(v.prefix or "") for v in prefixed)
            return [v.ref for v in prefixed if len(v.prefix or "") == longest]
        return [v.ref for v in values if v.prefix is None]

    def query(self, path: str, query: str, visible_to: Iterable[str] = SEEING) -> None:
        """Also call the GET route ``path`` (template) with the query string ``query``
        (``email=a@example.com``); when it names a record, ``visible_to`` says who may find it:
        the others get 404 as for a record in the path (declare the route scoped)."""
        self.queries.append((_plain(path), query, Ref(f"?{query}", frozenset(visible_to))))

    def body_ref(self, method: str, *paths: str) -> Ref | None:
        """What :meth:`body` said about the records the first of ``paths`` with a body names."""
        bodies = {(m, _plain(p)): p for (m, p) in self.bodies}
        for path in paths:
            found = bodies.get((method.upper(), _plain(path)))
            if found is not None:
                return self.body_refs.get((method.upper(), found))
        return None

    def payload(self, method: str, *paths: str) -> dict[str, Any] | None:
        """The body registered for ``METHOD`` and the first of ``paths`` that has one
        (converters such as ``:int`` ignored); ``None`` when none has."""
        bodies = {(m, _plain(p)): b for (m, p), b in self.bodies.items()}
        for path in paths:
            found = bodies.get((method.upper(), _plain(path)))
            if found is not None:
                return found(self) if callable(found) else found
        return None

    # --- clients ----------------------------------------------------------------------------

    def _client(self, **kwargs: Any) -> TestClient:
        # entered once and kept: a TestClient used outside ``with`` starts an event loop
        # thread for every request, which was a third of the matrix's time
        return self._clients.enter_context(TestClient(self.app, base_url=BASE_URL, **kwargs))

    def close(self) -> None:
        """Stop the clients' event loops."""
        self._clients.close()

    def api(self, persona: str) -> TestClient:
        """An API client sending ``persona``'s bearer token (none for ``anonymous``)."""
        if persona not in self._api:
            token = self.personas[persona].token
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._api[persona] = self._client(headers=headers)
        return self._api[persona]

    def ui(self, persona: str) -> Browser:
        """A browser signed in as ``persona`` through the login form (signed out for
        ``anonymous``); its ``post`` sends the CSRF token."""
        if persona not in self._ui:
            browser = Browser(self._client())
            who = self.personas[persona]
            if who.email is not None:
                response = browser.login(who.email, who.password or "")
                assert response.status_code == 303, (persona, response.status_code)
            self._ui[persona] = browser
        return self._ui[persona]

    def user(self, persona: str) -> Any:
        """``persona`` as requests see it (``core.auth.SignedIn``)."""
        from core import auth

        return auth.signed_in_user(self.crm.db.reader(), self.personas[persona].user_id)

    # --- the database -----------------------------------------------------------------------

    def tables(self) -> list[Table]:
        """Every table of the database, parents before children (reflected once)."""
        if self._metadata is None:
            self._metadata = MetaData()
            self._metadata.reflect(self.crm.db.engine)
        return list(self._metadata.sorted_tables)

    def _key_columns(self, table: Table) -> list[Any]:
        return list(table.primary_key.columns) or list(table.columns)

    def _rows(self, conn: Any, table: Table) -> dict[tuple, tuple]:
        keys = self._key_columns(table)
        names = [c.name for c in table.columns]
        positions = [names.index(c.name) for c in keys]
        rows = conn.execute(select(table)).all()
        return {tuple(row[i] for i in positions): tuple(row) for row in rows}

    def fingerprint(self) -> dict[str, str]:
        """A digest of every table's rows, by table, the attempt tables left out.

        Read through the driver without SQLAlchemy's type processing: the matrix takes one
        after every write, and this is most of its cost.
        """
        names = [t.name for t in self.tables() if t.name not in ATTEMPT_TABLES]
        if self.crm.db.dialect == "postgresql":
            # one round trip: the server digests every table
            digest = (
                "(SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"
                ' FROM "{}" r)'
            )
            query = "SELECT " + ", ".join(digest.format(name) for name in names)
            with self.crm.db.engine.connect() as conn:
                return dict(zip(names, conn.exec_driver_sql(query).one(), strict=True))
        digests = {}
        raw = self.crm.db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for name in names:
                cursor.execute(f'SELECT * FROM "{name}"')
                text_rows = sorted(map(repr, cursor.fetchall()))
                digests[name] = hashlib.sha256("\n".join(text_rows).encode()).hexdigest()
            cursor.close()
            raw.rollback()
        finally:
            raw.close()
        return digests

    def snapshot(self) -> Snapshot:
        """Every row of every table but the attempt tables, and the sequences' positions."""
        with self.crm.db.engine.connect() as conn:
            rows = {
                t.name: self._rows(conn, t) for t in self.tables() if t.name not in ATTEMPT_TABLES
            }
            return Snapshot(rows, self._sequences(conn))

    def _sequences(self, conn: Any) -> dict[str, tuple[int, bool]]:
        if self.crm.db.dialect == "postgresql":
            # every sequence but those of the attempt tables, which keep their rows
            owned = conn.execute(
                text(
                    "SELECT s.relname, t.relname FROM pg_class s"
                    " JOIN pg_namespace n ON n.oid = s.relnamespace"
                    " LEFT JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
                    " LEFT JOIN pg_class t ON t.oid = d.refobjid"
                    " WHERE s.relkind = 'S' AND n.nspname = current_schema()"
                )
            ).all()
            names = [seq for seq, table in owned if table not in ATTEMPT_TABLES]
            found = {}
            for name in names:
                row = conn.execute(text(f'SELECT last_value, is_called FROM "{name}"')).one()
                found[name] = (int(row[0]), bool(row[1]))
            return found
        exists = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_sequence'")
        ).first()
        if not exists:
            return {}
        return {
            str(name): (int(seq), True)
            for name, seq in conn.execute(text("SELECT name, seq FROM sqlite_sequence"))
            if name not in ATTEMPT_TABLES
        }

    def restore(self, snapshot: Snapshot, only: Iterable[str] | None = None) -> list[str]:
        """Put the database back as ``snapshot`` had it; return the tables that changed.

        Rows are compared by primary key: rows that appeared are deleted (children first),
        changed rows are written back and missing ones inserted (parents first). ``only``
        limits the work to these tables (those whose fingerprint changed: any change to a row
        shows there, cascades included).
        """
        changed: list[str] = []
        wanted_tables = set(snapshot.rows if only is None else only) & set(snapshot.rows)
        tables = [t for t in self.tables() if t.name in wanted_tables]
        with self.crm.db.writer.connect() as conn, conn.begin():
            if self.crm.db.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            for table in reversed(tables):
                wanted = snapshot.rows[table.name]
                extra = [k for k in self._rows(conn, table) if k not in wanted]
                if extra:
                    changed.append(table.name)
                    keys = self._key_columns(table)
                    for start in range(0, len(extra), 500):
                        chunk = extra[start : start + 500]
                        conn.execute(delete(table).where(tuple_(*keys).in_(chunk)))
            for table in tables:
                wanted = snapshot.rows[table.name]
                current = self._rows(conn, table)
                names = [c.name for c in table.columns]
                keys = self._key_columns(table)
                missing = [
                    dict(zip(names, row, strict=True))
                    for k, row in wanted.items()
                    if k not in current
                ]
                differ = [row for k, row in wanted.items() if k in current and current[k] != row]
                if (missing or differ) and table.name not in changed:
                    changed.append(table.name)
                for row in differ:
                    values = dict(zip(names, row, strict=True))
                    where = and_(*(c == values[c.name] for c in keys))
                    conn.execute(update(table).where(where).values(**values))
                if missing:
                    conn.execute(insert(table), missing)
            self._set_sequences(conn, snapshot.sequences)
        return changed

    def _set_sequences(self, conn: Any, sequences: dict[str, tuple[int, bool]]) -> None:
        if self.crm.db.dialect == "postgresql":
            if sequences:  # in one round trip
                calls = [
                    f"setval('\"{name}\"', {int(value)}, {bool(called)})"
                    for name, (value, called) in sequences.items()
                ]
                conn.exec_driver_sql("SELECT " + ", ".join(calls))
            return
        for name, (value, _) in sequences.items():
            conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (value, name))


def create_world(crm: Any) -> World:
    """A :class:`World` on ``crm`` (initialised, every module of :data:`PLUGINS` enabled): the
    teams, the personas with their API tokens; the builders run afterwards (:func:`build`)."""
    from core import auth, users
    from core.models import User
    from core.web.app import create_app

    world = World(crm, create_app(crm))
    with crm.db.write() as session:
        teams = {key: users.add_team(session, key, label) for key, label in TEAMS.items()}
        for key, team in teams.items():
            world.team_ids[key] = team.id
        made: dict[str, tuple[User, str, str]] = {}
        for persona, (email, name, team, roles) in PEOPLE.items():
            user = users.create_user(session, email, name, PASSWORD, roles)
            users.set_team(session, user, teams[team])
            made[persona] = (user, email, PASSWORD)
        made["admin"] = (users.get_user(session, ADMIN_EMAIL), ADMIN_EMAIL, ADMIN_PASSWORD)
        tokens = {
            p: auth.create_token(session, u, "matrix").secret for p, (u, _, _) in made.items()
        }
        ids = {p: u.id for p, (u, _, _) in made.items()}
    conn = crm.db.reader()
    world.personas["anonymous"] = Persona("anonymous", None, None, None, None, frozenset())
    for persona in PERSONAS[1:]:
        _, email, password = made[persona]
        signed_in = auth.signed_in_user(conn, ids[persona])
        world.personas[persona] = Persona(
            persona, ids[persona], email, password, tokens[persona], signed_in.permissions
        )
    return world


def builder(module: str) -> Callable[[World], None] | None:
    """``build`` of ``tests/security/world_<module>.py``; ``None`` while that file is missing."""
    name = f"tests.security.world_{module}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name).build


def build(world: World) -> World:
    """Run every module's builder in order; an error is kept in ``world.build_errors`` (the
    matrix fails that module with it) and the others still run."""
    import traceback

    for module in MODULES:
        try:
            make = builder(module)
        except Exception:
            world.build_errors[module] = traceback.format_exc()
            continue
        if make is None:
            continue
        try:
            make(world)
        except Exception:
            world.build_errors[module] = traceback.format_exc()
    return world
