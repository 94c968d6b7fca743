"""The REST API under schemathesis: every operation of the app with every module enabled.

Each operation of the OpenAPI document (core and plugin routes alike) is one test, run on SQLite
and PostgreSQL, signed in with an API token as the administrator, who reaches every operation
(and, in the long profile, as a salesperson too, whom permissions and record rules hold back).
Schemathesis's examples, coverage and fuzzing phases send it valid and invalid
requests, and every default check judges the answers: no server error, status codes, content
types, headers and bodies as documented, invalid data refused, valid data accepted, methods
outside the document answered 405 with ``Allow``, and authentication enforced (``ignored_auth``
repeats a request without credentials and with wrong ones).

One check is narrowed: a valid request refused with 422 passes when each refused field is one
of ``fuzz_kit.SEMANTIC_RULES``, business rules the document cannot state (each with its
reason). Runs are derandomised; ``CRM_RELIABILITY_PROFILE=long`` sends many more examples.

The tests after the fuzzing pin down, one request each, what the fuzzer found and the product
fixed: bounded ids, JSON types taken as documented, documented error answers, ``Allow`` headers,
repeated parameters refused, fields a change cannot empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from core.runtime import Crm
from core.web.access import KEY
from core.web.app import create_app
from tests.conftest import postgres_url_or_skip
from tests.profile import pick
from tests.security import fuzz_kit

schema = fuzz_kit.load_schema()
#: Who the requests are sent as: the administrator reaches every operation; a salesperson
#: meets permissions and record rules (other queries, other answers).
PERSONAS = {"admin": fuzz_kit.ADMIN, "sales": fuzz_kit.SALES}
#: Statuses that mean a request did not get past sign-in (and, for the administrator, who may
#: do everything, past the permission check).
TURNED_AWAY = {"admin": {401, 403, 405}, "sales": {401, 405}}


class FuzzWorld:
    """The app under test, on a CRM with demo data, and the tokens of the fuzzing users."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm
        self.app = create_app(crm)
        self.tokens = {email: fuzz_kit.bearer(crm, email) for email in PERSONAS.values()}
        self.statuses: list[int] = []

    def headers(self, persona: str, label: str) -> dict[str, str]:
        """The persona's token; a fresh one for operations that end their credentials."""
        if label in fuzz_kit.ENDS_CREDENTIALS:
            return fuzz_kit.bearer(self.crm, PERSONAS[persona])
        return self.tokens[PERSONAS[persona]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzWorld]:
    """The fuzzed app on SQLite or on PostgreSQL, shared by the operations of this module."""
    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        with fuzz_kit.every_module_crm(f"sqlite:///{folder / 'crm.db'}", folder) as crm:
            yield FuzzWorld(crm)
        return
    from core.testing import postgres_database

    admin_url = postgres_url_or_skip(os.environ.get("CRM_TEST_POSTGRES_URL"))
    with postgres_database(admin_url) as url, fuzz_kit.every_module_crm(url, folder) as crm:
        yield FuzzWorld(crm)


@pytest.fixture(params=pick(["admin"], sorted(PERSONAS)))
def persona(request: pytest.FixtureRequest) -> str:
    """Who the fuzzer signs in as (see ``PERSONAS``)."""
    return request.param


@pytest.fixture
def _got_past_sign_in(fuzz_world: FuzzWorld, persona: str) -> Iterator[None]:
    """Fail an operation none of whose requests got past sign-in: its checks proved nothing."""
    fuzz_world.statuses.clear()
    yield
    assert set(fuzz_world.statuses) - TURNED_AWAY[persona], (
        f"every request was turned away ({sorted(set(fuzz_world.statuses))}): the fuzzer's"
        " credentials no longer work"
    )


@schema.parametrize()
@pytest.mark.usefixtures("_got_past_sign_in")
@settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=pick(8, 150),
    suppress_health_check=list(HealthCheck),
)
def test_operation_conforms(case: Any, fuzz_world: FuzzWorld, persona: str) -> None:
    """Every default check passes on every generated request to the operation."""
    sent = {"app": fuzz_world.app, "headers": fuzz_world.headers(persona, case.operation.label)}
    response = case.call(**sent)
    fuzz_world.statuses.append(response.status_code)
    fuzz_kit.validate(case, response, sent)


@pytest.fixture(params=["sqlite", "postgres"])
def pristine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[fuzz_kit.Pristine]:
    """A database with every module and the demo data, copied afresh for each workflow."""
    if request.param == "sqlite":
        yield fuzz_kit.Pristine(f"sqlite:///{tmp_path / 'pristine.db'}", tmp_path)
        return
    from core.testing import postgres_database

    with postgres_database(postgres_url_or_skip(os.environ.get("CRM_TEST_POSTGRES_URL"))) as url:
        yield fuzz_kit.Pristine(url, tmp_path)


def test_workflows_conform(pristine: fuzz_kit.Pristine) -> None:
    """Sequences of calls that feed one answer into the next request (a created customer's id
    into its update, then its deletion…), along links schemathesis infers from the document:
    every default check holds at each step, those about deleted and created resources too.
    Each sequence starts from the same data, as stateful testing needs to replay it."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.copy = ExitStack()
            self.crm, self.app = self.copy.enter_context(pristine.copy())

        def teardown(self) -> None:
            self.copy.close()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            headers = pristine.headers
            if case.operation.label in fuzz_kit.ENDS_CREDENTIALS:
                headers = fuzz_kit.bearer(self.crm, fuzz_kit.ADMIN)
            return {"app": self.app, "headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            fuzz_kit.validate(case, response, kwargs, recorder=self.recorder)

    Workflow.run(
        settings=settings(
            derandomize=True,
            database=None,
            deadline=None,
            max_examples=pick(10, 200),
            stateful_step_count=pick(8, 30),
            suppress_health_check=list(HealthCheck),
        )
    )


# --- what the fuzzer found, one request each ----------------------------------------------------


@pytest.fixture
def api(fuzz_world: FuzzWorld) -> TestClient:
    """A client of the fuzzed app signed in as the administrator (bearer token)."""
    client = TestClient(fuzz_world.app)
    client.headers.update(fuzz_world.headers("admin", ""))
    return client


def _inputs(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of every parameter and request body property of ``document``."""
    schemas = document["components"]["schemas"]

    def walk(node: Any, where: str, seen: frozenset[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(schemas[name], f"{where}:{name}", seen | {name})
            return
        yield where, node
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, ()):
                yield from walk(option, where, seen)
        yield from walk(node.get("items"), f"{where}[]", seen)
        for name, prop in node.get("properties", {}).items():
            yield from walk(prop, f"{where}.{name}", seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", ()):
                yield from walk(parameter["schema"], f"{label} {parameter['name']}", frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(content["schema"], f"{label} body", frozenset())


def test_every_whole_number_the_api_takes_is_bounded(fuzz_world: FuzzWorld) -> None:
    """Ids, versions, amounts and counts have a documented largest value, written as an integer
    (an unbounded id reached the database and failed there with a 500)."""
    unbounded = [
        where
        for where, node in _inputs(fuzz_world.app.openapi())
        if node.get("type") == "integer"
        and not isinstance(node.get("maximum"), int)
        and "exclusiveMaximum" not in node
    ]
    assert not unbounded


def test_every_error_answer_is_documented(fuzz_world: FuzzWorld) -> None:
    """401 where a token is needed, 403 where a permission is (or a change is made), 404 where a
    record is named in the path, 400 and 422 where a body is read: each with a body schema."""
    missing = []
    for path, operations in fuzz_world.app.openapi()["paths"].items():
        for method, operation in operations.items():
            wanted = {"422"} if operation.get("parameters") or "requestBody" in operation else set()
            rule = operation.get(KEY) or {}
            if operation.get("security") != []:
                wanted.add("401")
                if rule.get("permission") or rule.get("any_of") or method != "get":
                    wanted.add("403")
            if "{" in path:
                wanted.add("404")
            if "requestBody" in operation:
                wanted.add("400")
            responses = operation["responses"]
            missing += [f"{method.upper()} {path} {code}" for code in wanted - set(responses)]
            missing += [
                f"{method.upper()} {path} {code} has no body schema"
                for code, answer in responses.items()
                if code.startswith("4") and "content" not in answer
            ]
    assert not missing


def test_ids_beyond_the_largest_are_refused_naming_them(api: TestClient) -> None:
    """422 naming the id, not a database error."""
    for url in ("/api/customers/9223372036854775808", "/api/collaborative/handoffs/2147483648"):
        response = api.get(url)
        assert response.status_code == 422, url
        assert response.json()["detail"][0]["loc"][-1] in ("customer_id", "handoff_id")


def test_body_values_must_have_their_documented_json_type(api: TestClient) -> None:
    """No ``true`` for a number, no number for a date, no numeric text for a time; ``2.0`` is
    still a whole number, as JSON Schema counts it."""
    customer = api.post("/api/customers", json={"display_name": "Typed"}).json()["id"]
    url = "/api/operational/opportunities"
    base = {"customer_id": customer, "title": "Typed deal"}
    for field, value in (("probability", True), ("expected_close", 0), ("probability", "50")):
        response = api.post(url, json={**base, field: value})
        assert response.status_code == 422, (field, value)
        assert response.json()["detail"][0]["loc"] == ["body", field]
    activity = {"customer_id": customer, "kind": "call", "subject": "Typed", "due_at": "0.5"}
    assert api.post("/api/operational/activities", json=activity).status_code == 422
    assert api.post(url, json={**base, "probability": 50.0}).json()["probability"] == 50


def test_method_not_allowed_lists_every_method_of_the_path(api: TestClient) -> None:
    """``Allow`` names the methods of all the routes of the path, not of the first one."""
    assert api.request("PUT", "/api/customers").headers["allow"] == "GET, POST"
    response = api.request("OPTIONS", "/api/customers/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE"


def test_a_name_beside_an_id_is_not_read_as_an_id(api: TestClient) -> None:
    """``/customers/lookup`` is a resource of its own: PATCH there is 405, not an id error."""
    response = api.patch("/api/customers/lookup", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_a_parameter_taken_once_cannot_be_repeated(api: TestClient) -> None:
    """``?limit=5&limit=500``: 422 naming ``limit``; a list parameter may repeat."""
    response = api.get("/api/customers?limit=5&limit=500")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    assert api.get("/api/smart_sales/alerts?state=new&state=seen").status_code == 200


def test_text_with_a_nul_character_is_refused_naming_it(api: TestClient) -> None:
    """NUL (U+0000) in a query or a body: 422 naming where (PostgreSQL failed with a 500)."""
    response = api.get("/api/operational/products?category=tea%00")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "category"]
    body = {"name": "Nul", "definition": {"tags": ["vip", "v\u0000ip"]}}
    response = api.post("/api/analytical/segments", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "definition", "tags", 1]


def test_a_missing_user_is_refused_naming_it(api: TestClient) -> None:
    """An activity's ``user_id`` or an opportunity's ``owner_id`` naming no user: 422 naming
    it (the database's foreign key refused the row and the API answered 500)."""
    customer = api.post("/api/customers", json={"display_name": "Activity owner"}).json()["id"]
    activity = {
        "customer_id": customer,
        "kind": "call",
        "subject": "Call back",
        "due_at": "2026-04-10T09:30:00Z",
        "user_id": 2_000_000_000,
    }
    response = api.post("/api/operational/activities", json=activity)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "user_id"]
    deal = {"customer_id": customer, "title": "Deal", "owner_id": 2_000_000_000}
    response = api.post("/api/operational/opportunities", json=deal)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "owner_id"]


def test_a_change_cannot_empty_a_required_field(api: TestClient) -> None:
    """``"name": null`` on a mailing is refused naming the field (it was a 500)."""
    template = {"name": "Null test", "subject": "Hello", "body": "Hi"}
    template_id = api.post("/api/operational/mail-templates", json=template).json()["id"]
    mailing = api.post(
        "/api/operational/mailings", json={"name": "Null test", "template_id": template_id}
    ).json()
    url = f"/api/operational/mailings/{mailing['id']}"
    response = api.patch(url, json={"version": mailing["version"], "name": None})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
