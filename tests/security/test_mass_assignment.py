"""Mass assignment: privileged fields in a write are refused or ignored, on every operation.

Generated from the app's route table and OpenAPI schema with every module enabled, so a new
write operation is covered the day it exists (and fails here until ``r_payloads.TABLE`` says
how to send it). For each JSON write operation of the API, sent by the least privileged
persona allowed to make it:

1. its valid body succeeds (the table is right);
2. the valid body plus fields the operation does not declare (``id``, ``is_admin``, ``role``,
   ``roles``, ``permissions``, ``owner_id``, ``team_id``, ``version``, ``created_at``...) is
   refused with 422, or leaves none of those values in the database;
3. each declared field that could hand over something (an owner or assignee in the other
   team, the other team, a customer or record the caller may not see) is refused, or the
   database holds no row with that value afterwards, and the foreign record is unchanged.

The generic UI forms (``/ui/{name}/new`` and ``/ui/{name}/{id}/edit``) get the same with
extra form fields. Every check reads the database; the world is restored after each request.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests.security.r_kit import form_fields
from tests.security.r_payloads import PRIVILEGED, TABLE, UNDECLARED, Context, Op
from tests.security.test_access_matrix import Instance, expand
from tests.security.world import BASE_URL, World

WRITES = ("POST", "PUT", "PATCH")
#: Who may send an operation, least privileged first.
SENDERS = ("owner", "manager", "admin")
#: A time far in the past that no row of the world holds (sent as created_at and updated_at).
PAST_YEAR = 2000


@dataclass
class Diff:
    """What a request changed: rows added, changed and removed, as column dicts by table."""

    added: dict[str, list[dict[str, Any]]]
    changed: dict[str, list[dict[str, Any]]]
    removed: dict[str, list[dict[str, Any]]]

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (self.added or self.changed or self.removed)

    def written(self) -> list[tuple[str, dict[str, Any]]]:
        """Every added or changed row, with its table."""
        return [
            (t, row) for part in (self.added, self.changed) for t, rs in part.items() for row in rs
        ]

    def tables(self) -> list[str]:
        """The tables that changed."""
        return sorted({*self.added, *self.changed, *self.removed})


def diff(world: World, before: Any, after: Any) -> Diff:
    """The difference between two snapshots of the world."""
    columns = {t.name: [c.name for c in t.columns] for t in world.tables()}
    added, changed, removed = {}, {}, {}
    for table, rows in after.rows.items():
        old = before.rows.get(table, {})
        names = columns[table]
        new_rows = [dict(zip(names, r, strict=True)) for k, r in rows.items() if k not in old]
        changed_rows = [
            dict(zip(names, r, strict=True)) for k, r in rows.items() if k in old and old[k] != r
        ]
        gone = [dict(zip(names, r, strict=True)) for k, r in old.items() if k not in rows]
        if new_rows:
            added[table] = new_rows
        if changed_rows:
            changed[table] = changed_rows
        if gone:
            removed[table] = gone
    return Diff(added, changed, removed)


# --- the operations ---------------------------------------------------------------------------


def _schema(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _schema(doc, doc["components"]["schemas"][node["$ref"].split("/")[-1]])
    for option in node.get("anyOf", []):
        if option.get("type") != "null":
            return _schema(doc, option)
    return node


def json_writes(world: World) -> dict[tuple[str, str], set[str]]:
    """Every API write operation taking a JSON body, with the fields its body declares."""
    doc = world.app.openapi()
    found = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if method.upper() in WRITES and "application/json" in content:
                schema = _schema(doc, content["application/json"]["schema"])
                found[(method.upper(), path)] = set(schema.get("properties", {}))
    return found


def senders(world: World, instance: Instance, op: Op) -> list[str]:
    """Who may send ``instance``, least privileged first: the table's persona, else those
    allowed by the route's rule who see every record in its path."""
    if op.persona:
        return [op.persona]
    found = []
    for persona in SENDERS:
        allowed = instance.rule.public is not None or instance.rule.allows(
            world.personas[persona].permissions
        )
        if allowed and all(persona in ref.visible_to for ref in instance.refs):
            found.append(persona)
    return found


def foreign(world: World, kind: str, persona: str, body: dict[str, Any]) -> Any:
    """A value of ``kind`` that is not ``persona``'s to choose (``None``: there is none, as
    for the administrator, who sees everything and may give anything to anyone)."""
    if persona == "admin":
        return None
    if kind == "user":
        if "customer:assign" in world.personas[persona].permissions:
            return None
        return world.personas["other_team"].user_id
    if kind == "team":
        if "customer:assign" in world.personas[persona].permissions:
            return None
        return world.team_ids["beta"]
    if kind == "message":
        refs = world.params.get("message_id", [])
        hidden = [v.ref for v in refs if persona not in v.ref.visible_to]
        return hidden[0].value if hidden else None
    name = body.get("record_type", "customer") if kind == "record" else kind
    refs = world.records.get(name) or world.records.get(name.split(".")[-1], [])
    hidden = [r for r in refs if persona not in r.visible_to]
    return hidden[0].value if hidden else None


def _column(field: str, kind: str) -> str:
    return "id" if field == "other_id" else field


def _tables_of(kind: str, body: dict[str, Any]) -> tuple[str, ...]:
    name = body.get("record_type", "customer") if kind == "record" else kind
    return {
        "customer": ("core_customer",),
        "opportunity": ("operational_opportunity",),
        "operational.opportunity": ("operational_opportunity",),
        "ticket": ("operational_ticket",),
        "operational.ticket": ("operational_ticket",),
        "order": ("operational_order",),
        "operational.order": ("operational_order",),
        "message": ("collaborative_message",),
    }.get(name, ())


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Case:
    """One operation as this test sends it."""

    key: tuple[str, str]
    instance: Instance
    persona: str
    op: Op
    declared: set[str]

    def __str__(self) -> str:
        return f"{self.key[0]} {self.key[1]} as {self.persona}"

    def body(self, world: World) -> dict[str, Any] | None:
        """The valid body: the table's, else the world's."""
        if self.op.body is not None:
            if callable(self.op.body):
                return self.op.body(Context(world, self.persona, self.path_values()))
            return dict(self.op.body)
        registered = world.payload(*self.key)
        return None if registered is None else dict(registered)

    def path_values(self) -> dict[str, Any]:
        """The values of the path's parameters in this instance."""
        names = re.findall(r"\{(\w+)(?::\w+)?\}", self.key[1])
        parts = re.escape(re.sub(r"\{\w+(?::\w+)?\}", "\0", self.key[1])).replace("\\\x00", "\0")
        pattern = parts.replace("\0", "([^/]+)")
        match = re.fullmatch(pattern, self.instance.url)
        if match is None:
            return {}
        return {n: int(v) if v.isdigit() else v for n, v in zip(names, match.groups(), strict=True)}

    def send(self, world: World, body: dict[str, Any]) -> Any:
        """Make the request with ``body`` as the persona (bearer token; none when anonymous)."""
        token = world.personas[self.persona].token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = TestClient(world.app, base_url=BASE_URL, headers=headers)
        return client.request(self.key[0], self.instance.url, json=body)


def cases(world: World) -> tuple[list[list[Case]], list[str]]:
    """Every JSON write operation to try (as the ways to send it, least privileged persona
    first), and what is missing to try the others."""
    problems = []
    operations = json_writes(world)
    instances = [i for i in expand(world).instances if i.api and i.method in WRITES]
    found = []
    for key, declared in sorted(operations.items()):
        op = TABLE.get(key)
        if op is None:
            problems.append(
                f"{key[0]} {key[1]}: no entry in tests/security/r_payloads.TABLE; say who sends"
                " it, with what valid body, and which privileged fields it declares"
            )
            continue
        undecided = (declared & PRIVILEGED) - set(op.attack) - set(op.chooses)
        if undecided:
            problems.append(
                f"{key[0]} {key[1]}: declares {sorted(undecided)}; put each in attack (tried with"
                " a value not the caller's) or chooses (with the reason it is the caller's)"
            )
        candidates = [
            Case(key, instance, persona, op, declared)
            for persona in (*SENDERS, "anonymous")
            for instance in instances
            # the OpenAPI document writes {customer_id} where the route says {customer_id:int}
            if (instance.method, re.sub(r":\w+}", "}", instance.template)) == key
            and persona in senders(world, instance, op)
        ]
        if candidates:
            found.append(candidates)
        else:
            problems.append(f"{key[0]} {key[1]}: no route instance a persona may send")
    return found, problems


def _resolve(value: Any, world: World) -> Any:
    if value == "RIVAL":
        return world.personas["other_team"].user_id
    if value == "BETA":
        return world.team_ids["beta"]
    if value == "CUSTOMER":
        return world.customer_id
    return value


def _undeclared_traces(world: World, changes: Diff, extras: dict[str, Any]) -> list[str]:
    """Where the database kept one of the undeclared values."""
    traces = []
    for table, row in changes.written():
        for name, value in extras.items():
            if name not in row or row[name] is None:
                continue
            stored = row[name]
            if name in ("created_at", "updated_at"):
                if isinstance(stored, dt.datetime) and stored.year == PAST_YEAR:
                    traces.append(f"{table}.{name} = {stored}")
            elif stored == value and name not in ("module",):
                traces.append(f"{table}.{name} = {stored!r}")
    for table in ("core_user_role", "core_role_permission", "core_user"):
        if table in changes.tables():
            traces.append(f"{table} changed")
    return traces


def _attack_traces(
    world: World, changes: Diff, field: str, kind: str, value: Any, body: dict[str, Any]
) -> list[str]:
    """Where the database took the foreign ``value`` of ``field``."""
    column = _column(field, kind)
    traces = [
        f"{table}.{column} = {value!r}"
        for table, row in changes.written()
        if column in row and row[column] == value and column != "id"
    ]
    for table in _tables_of(kind, body):
        for part in (changes.changed, changes.removed):
            if any(row.get("id") == value for row in part.get(table, [])):
                traces.append(f"the foreign {table} row {value} was changed or removed")
    return traces


def _run(world: World, candidates: list[Case], snapshot: Any, tally: dict[str, int]) -> list[str]:
    problems = []

    def attempt(case: Case, body: dict[str, Any]) -> tuple[Any, Diff]:
        response = case.send(world, body)
        changes = diff(world, snapshot, world.snapshot())
        if not changes.empty:
            world.restore(snapshot)
        return response, changes

    # the first way of sending it whose valid body succeeds (a hand-off is accepted by the
    # receiving team only, a campaign is sent once frozen...)
    refused = []
    for case in candidates:
        valid = case.body(world)
        if valid is None:
            return [f"{case}: no valid body (r_payloads.TABLE or the world's builders)"]
        response, changes = attempt(case, valid)
        if 200 <= response.status_code < 300:
            break
        refused.append(
            f"{case.instance.url} as {case.persona}: {response.status_code} {response.text[:200]}"
        )
    else:
        return [f"{candidates[0]}: the valid body never succeeded: " + "; ".join(refused)]

    extras = {k: _resolve(v, world) for k, v in UNDECLARED.items() if k not in case.declared}
    response, changes = attempt(case, {**valid, **extras})
    problems += _judge(case, "undeclared fields", response, changes)
    if 200 <= response.status_code < 300:
        problems += [f"{case}: kept {t}" for t in _undeclared_traces(world, changes, extras)]

    for field, kind in case.op.attack.items():
        body = case.body(world) or {}
        value = foreign(world, kind, case.persona, body)
        if value is None:
            continue
        response, changes = attempt(case, {**body, field: value})
        tally["refused" if response.status_code >= 400 else "ignored"] += 1
        problems += _judge(case, f"{field}={value}", response, changes)
        if 200 <= response.status_code < 300:
            problems += [
                f"{case}: {field}={value} ({kind} not the caller's) was taken: {t}"
                for t in _attack_traces(world, changes, field, kind, value, body)
            ]
    return problems


def _judge(case: Case, what: str, response: Any, changes: Diff) -> list[str]:
    status = response.status_code
    if status >= 500:
        return [f"{case} with {what}: {status}"]
    if status in (401, 405):
        return [f"{case} with {what}: {status} {response.text[:200]}"]
    if 400 <= status < 500 and not changes.empty:
        return [f"{case} with {what}: refused ({status}) but wrote {changes.tables()}"]
    return []


def test_every_json_write_refuses_or_ignores_privileged_fields(world: World) -> None:
    """Every API operation with a JSON body, generated from the schema and route table."""
    found, problems = cases(world)
    snapshot = world.snapshot()
    tally = {"refused": 0, "ignored": 0}
    try:
        for candidates in found:
            problems += _run(world, candidates, snapshot, tally)
    finally:
        world.restore(snapshot)
    print(f"\n{len(found)} JSON write operations tried; privileged fields: {tally}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert len(found) >= 50 and tally["refused"] + tally["ignored"] >= 15


# --- the generic UI forms ---------------------------------------------------------------------

#: What a foreign key of a form field points to, as the kinds of :func:`foreign`.
FOREIGN_KEYS = {
    "core_customer": "customer",
    "operational_opportunity": "opportunity",
    "operational_ticket": "ticket",
    "operational_order": "order",
    "core_user": "user",
    "core_team": "team",
}
#: Fields no generic form shows, posted with every form: ignored, or the form refused.
FORM_EXTRAS = {
    "id": "987654",
    "owner_id": "RIVAL",
    "team_id": "BETA",
    "created_by": "RIVAL",
    "created_by_id": "RIVAL",
    "created_at": "2000-01-02T03:04:05",
    "updated_at": "2000-01-02T03:04:05",
    "is_admin": "on",
    "roles": "admin",
    "role": "admin",
}
#: Values a new record cannot copy from an existing one (unique keys), or that only its new
#: form asks for ("CUSTOMER": the world's customer), by resource.
FORM_NEW = {
    "customer": {"email": "form.copy@example.org", "phone": "0911 222 333", "external_ref": ""},
    "ticket": {"customer_id": "CUSTOMER"},
    "product": {"sku": "MASS-FORM-1"},
    "mail_template": {"name": "Mass form template"},
    "partner": {"name": "Mass form partner", "email": "", "phone": ""},
}


def _form_ui(world: World, persona: str) -> Any:
    from tests.web.conftest import Browser

    signed_in = world.ui(persona)
    return Browser(TestClient(world.app, base_url=BASE_URL, cookies=dict(signed_in.client.cookies)))


def _form_kinds(world: World, resource: Any, fields: list[str]) -> dict[str, str]:
    """The form's fields that name another record, by the kind of record."""
    from core.ui.registry import column_of

    kinds = {}
    for name in fields:
        column = column_of(resource.model, name)
        if column is None or not column.foreign_keys:
            continue
        target = next(iter(column.foreign_keys)).column.table.name
        if target in FOREIGN_KEYS:
            kinds[name] = FOREIGN_KEYS[target]
    return kinds


def _form_persona(world: World, resource: Any, action: str, record: Any) -> str | None:
    permission = resource.permission(action)
    for persona in SENDERS:
        if permission in world.personas[persona].permissions and persona in record.visible_to:
            return persona
    return None


def test_every_generic_form_ignores_or_refuses_privileged_fields(world: World) -> None:
    """``/ui/{name}/new`` and ``/ui/{name}/{id}/edit`` of every resource with a form: the form as
    the page gives it succeeds; with fields no form shows, or with a reference to a record
    (or a person, a team) that is not the user's to choose, nothing of that is stored."""
    registry = world.app.state.ui.registry
    snapshot = world.snapshot()
    problems: list[str] = []
    tried = 0
    tally = {"refused": 0, "ignored": 0}

    def attempt(browser: Any, url: str, form: dict[str, str]) -> tuple[Any, Diff]:
        response = browser.post(url, form)
        changes = diff(world, snapshot, world.snapshot())
        if not changes.empty:
            world.restore(snapshot)
        return response, changes

    try:
        for name, resource in sorted(registry.resources.items()):
            view = registry.view(name, "form")
            if view is None:
                continue
            refs = world.records.get(name, [])
            if not refs:
                problems.append(f"{name}: the world has no record of it (world.record)")
                continue
            for action in ("update", "create"):
                persona = _form_persona(world, resource, action, refs[0])
                if persona is None:
                    problems.append(f"{name}: no persona may {action} it")
                    continue
                browser = _form_ui(world, persona)
                page = browser.get(f"/ui/{name}/{refs[0].value}/edit")
                assert page.status_code == 200, (name, persona, page.status_code)
                form = form_fields(page.text, f"/ui/{name}/{refs[0].value}/edit")
                if action == "create":
                    url = f"/ui/{name}/new"
                    form.pop("version", None)
                    form.update(
                        {k: str(_resolve(v, world)) for k, v in FORM_NEW.get(name, {}).items()}
                    )
                else:
                    url = f"/ui/{name}/{refs[0].value}/edit"
                where = f"POST {url} as {persona}"
                response, changes = attempt(browser, url, form)
                if response.status_code != 303:
                    problems.append(
                        f"{where}: the form as shown got {response.status_code}"
                        f" {_form_errors(response.text)}"
                    )
                    continue
                tried += 1
                extras = {
                    k: str(_resolve(v, world)) for k, v in FORM_EXTRAS.items() if k not in form
                }
                response, changes = attempt(browser, url, {**form, **extras})
                problems += _judge_form(where, "fields no form shows", response, changes)
                if response.status_code == 303:
                    values = {k: _resolve(v, world) for k, v in FORM_EXTRAS.items() if k in extras}
                    problems += [
                        f"{where}: kept {t}"
                        for t in _undeclared_traces(world, changes, _typed(values))
                    ]
                for field, kind in _form_kinds(world, resource, list(form)).items():
                    value = foreign(world, kind, persona, {})
                    if value is None:
                        continue
                    response, changes = attempt(browser, url, {**form, field: str(value)})
                    tally["refused" if response.status_code != 303 else "ignored"] += 1
                    problems += _judge_form(where, f"{field}={value}", response, changes)
                    if response.status_code == 303:
                        problems += [
                            f"{where}: {field}={value} ({kind} not the caller's) was taken: {t}"
                            for t in _attack_traces(world, changes, field, kind, value, {})
                        ]
    finally:
        world.restore(snapshot)
    print(f"\n{tried} generic forms tried; references: {tally}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert tried >= 12 and tally["refused"] + tally["ignored"] >= 10


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """Form values as the database would hold them (ids as integers)."""
    return {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in values.items()}


def _form_errors(html: str) -> str:
    found = re.findall(r'class="field-error" id="error-([^"]+)">([^<]*)<', html)
    return "; ".join(f"{name}: {message}" for name, message in found) or html[:300]


def _judge_form(where: str, what: str, response: Any, changes: Diff) -> list[str]:
    status = response.status_code
    if status >= 500:
        return [f"{where} with {what}: {status}"]
    if status != 303 and not changes.empty:
        return [f"{where} with {what}: refused ({status}) but wrote {changes.tables()}"]
    return []
