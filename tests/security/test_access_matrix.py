"""The access matrix: every route of the app, called by every persona, answers as it declares.

Routes come from the app's own route table (``core.web.access.iter_routes``), so a module's new
route is in the matrix the moment it exists. Each route declares its access in its decorator
(``core.web.access``); generic routes are expanded over what the UI registry holds (resources,
their actions, slots, widgets) and over the record types. The personas and records come from
``tests/security/world.py`` and the module builders ``world_<module>.py``.

For each route instance and persona the test checks (see the module ``World`` docstring):

- anonymous callers get 401 on the API and a redirect to the login page in the UI, unless the
  route is public; public routes answer below 500 for everyone;
- a signed-in persona without the declared permission gets 403; one with it who may not see
  the record in the path of a scoped route gets 404; anyone else gets through (not 401, 403 or
  404, and below 500);
- a refused write leaves every table as it was (read from the database); an allowed one is
  undone before the next persona; a GET changes nothing;
- no page or API answer ``other_team`` gets contains what owner's team owns (:data:`MARKER`),
  searched for or not, while enough of them show ``other_team``'s own records (:data:`MINE`).

One test per module and database: ``pytest tests/security/test_access_matrix.py -k "sqlite and
operational"``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from core.web.access import Access, iter_routes
from tests.security.world import (
    BASE_URL,
    EVERYONE,
    MARKER,
    MINE,
    MODULES,
    PERSONAS,
    PLUGINS,
    Ref,
    World,
)

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
#: The search the leak check adds to every GET (lower case: the records hold ``Zqxleak``,
#: so a page repeating the search box's text is not mistaken for a leak).
SEARCH = MARKER.lower()
#: The views a generic ``/ui/{name}...`` route needs, by the path after ``/ui/{name}``.
VIEW_OF = {
    "": "list",
    "/export.csv": "list",
    "/new": "form",
    "/{record_id}/edit": "form",
    "/kanban": "kanban",
    "/{record_id}/move": "kanban",
    "/{record_id}": "detail",
}


@dataclass
class Instance:
    """One concrete request of the matrix: a route with its parameters filled in."""

    method: str
    template: str
    url: str
    module: str
    rule: Access
    refs: list[Ref] = field(default_factory=list)
    body_paths: tuple[str, ...] = ()
    body: dict[str, Any] | None = None

    @property
    def api(self) -> bool:
        """Whether the route belongs to the API (bearer tokens, 401) rather than the UI."""
        return self.template.startswith("/api/") or self.template in ("/openapi.json", "/docs")

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


@dataclass
class Matrix:
    """Every instance of the app's routes, and the problems found while expanding them."""

    instances: list[Instance]
    problems: dict[str, list[str]]


def module_of(path: str) -> str:
    """The module that registered a route: ``/api/<module>`` and ``/<module>`` prefixes."""
    for module in PLUGINS:
        for prefix in (f"/api/{module}", f"/{module}"):
            if path == prefix or path.startswith(prefix + "/"):
                return module
    return "core"


def _plain(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _fill(rule: Access, **values: str | None) -> Access:
    """``rule`` with the templates ``{resource}``, ``{action}``... replaced; a template
    standing for no permission (a widget needing none) drops out."""

    def one(permission: str | None) -> str | None:
        if permission is None:
            return None
        for key, value in values.items():
            token = "{" + key + "}"
            if token in permission:
                if value is None:
                    return None
                permission = permission.replace(token, value)
        return permission

    def many(permissions: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p for p in (one(p) for p in permissions) if p is not None)

    return replace(
        rule, permission=one(rule.permission), any_of=many(rule.any_of), all_of=many(rule.all_of)
    )


def _records(world: World, *names: str | None) -> list[Ref]:
    found: list[Ref] = []
    for name in names:
        if name is not None:
            found += [r for r in world.records.get(name, []) if r not in found]
    return found


def _generic(world: World, method: str, path: str, rule: Access) -> Iterator[tuple[Any, ...]]:
    """(partial path, module, rule, fixed refs, body) for each expansion of the generic
    parameters of ``path``; a string instead names what is missing."""
    from core.records import record_types

    registry = world.app.state.ui.registry
    plain = _plain(path)
    if plain.startswith("/ui/{name}"):
        rest = plain[len("/ui/{name}") :]
        for name, resource in registry.resources.items():
            module = registry.owners.get(f"resource:{name}", "core")
            filled = _fill(rule, resource=resource.permission_prefix or name)
            concrete = plain.replace("{name}", name, 1)
            if rest == "/actions/{action}":
                views = [registry.view(name, "list"), registry.view(name, "detail")]
                actions = {
                    a.name: a
                    for v in views
                    if v is not None
                    for a in [
                        *getattr(v, "row_actions", []),
                        *getattr(v, "bulk_actions", []),
                        *getattr(v, "actions", []),
                    ]
                }
                for action in actions.values():
                    refs = _records(world, name)
                    if not refs:
                        yield f"{module}: no record of UI resource {name!r} (world.record)"
                        continue
                    for ref in refs:
                        yield (
                            concrete.replace("{action}", action.name),
                            module,
                            _fill(filled, action=action.permission),
                            [ref],
                            {"ids": str(ref.value)},
                        )
                continue
            if registry.view(name, VIEW_OF.get(rest, "")) is None:
                continue
            if "{record_id}" in rest:
                refs = _records(world, name)
                if not refs:
                    yield f"{module}: no record of UI resource {name!r} (world.record)"
                for ref in refs:
                    yield (
                        concrete.replace("{record_id}", str(ref.value)),
                        module,
                        filled,
                        [ref],
                        None,
                    )
            else:
                yield concrete, module, filled, [], None
    elif "{widget_id}" in plain:
        for widget in registry.widgets:
            module = registry.owners.get(f"widget:{widget.id}", "core")
            filled = _fill(rule, widget=widget.permission)
            yield plain.replace("{widget_id}", widget.id), module, filled, [], None
    elif "{slot_id}" in plain:
        for slot in registry.slots:
            module = registry.owners.get(f"slot:{slot.id}", "core")
            resource = registry.resource(slot.resource)
            filled = _fill(
                rule, slot=slot.permission, resource=resource.permission_prefix or resource.name
            )
            refs = _records(world, slot.resource)
            if not refs:
                yield f"{module}: no record of UI resource {slot.resource!r} (world.record)"
            for ref in refs:
                concrete = plain.replace("{slot_id}", slot.id).replace(
                    "{record_id}", str(ref.value)
                )
                yield concrete, module, filled, [ref], None
    elif "{record_type}" in plain:
        module = module_of(path)
        for kind in record_types(world.crm).values():
            refs = _records(world, kind.name, kind.resource)
            if not refs:
                yield f"{module}: no record of record type {kind.name!r} (world.record)"
            filled = _fill(rule, record_type=kind.permission)
            for ref in refs:
                concrete = plain.replace("{record_type}", kind.name)
                yield concrete.replace("{record_id}", str(ref.value)), module, filled, [ref], None
    else:
        yield plain, module_of(path), rule, [], None


def expand(world: World) -> Matrix:
    """Every route instance of ``world``'s app; problems by module (undeclared routes,
    parameters without a value, records missing)."""
    instances: list[Instance] = []
    problems: dict[str, list[str]] = {m: [] for m in MODULES}
    for entry in iter_routes(world.app):
        rule = entry.access
        if rule is None:
            problems[module_of(entry.path)].append(
                f"{entry.method} {entry.path}: no access declared; declare it in the decorator"
                " (core.web.access.access / public)"
            )
            continue
        for found in _generic(world, entry.method, entry.path, rule):
            if isinstance(found, str):
                module, _, text = found.partition(": ")
                problems[module].append(f"{entry.method} {entry.path}: {text}")
                continue
            partial, module, filled, fixed, body = found
            names = PARAM.findall(partial)
            choices: dict[str, list[Ref]] = {}
            for name in names:
                refs = world.refs(name, partial)
                if not refs:
                    problems[module].append(
                        f"{entry.method} {entry.path}: no value for {{{name}}}; the module's"
                        " builder must register one (world.param)"
                    )
                choices[name] = refs
            if any(not refs for refs in choices.values()):
                continue
            queries = [("", None)] + [
                (f"?{query}", ref)
                for path, query, ref in world.queries
                if entry.method == "GET" and path == _plain(entry.path)
            ]
            for combination in _combinations(choices):
                url = partial
                for name, ref in combination.items():
                    url = url.replace("{" + name + "}", str(ref.value))
                for query, named in queries:
                    instances.append(
                        Instance(
                            entry.method,
                            entry.path,
                            url + query,
                            module,
                            filled,
                            [*fixed, *combination.values(), *([named] if named else [])],
                            (partial, _plain(entry.path)),
                            body,
                        )
                    )
    return Matrix(instances, problems)


def _combinations(choices: dict[str, list[Ref]]) -> Iterator[dict[str, Ref]]:
    """The n-th value of every parameter together (a parameter with fewer values gives its
    first): builders register related values (a customer and its identity) in the same order."""
    for n in range(max((len(refs) for refs in choices.values()), default=1)):
        yield {name: refs[n] if n < len(refs) else refs[0] for name, refs in choices.items()}


def expected(instance: Instance, persona: str, world: World) -> str:
    """``public``, ``login`` (anonymous refused), ``403``, ``404`` or ``allowed``."""
    rule = instance.rule
    if rule.public is not None:
        return "public"
    if persona == "anonymous":
        return "login"
    if not rule.allows(world.personas[persona].permissions):
        return "403"
    refs = instance.refs
    if instance.method in WRITES:
        body = world.body_ref(instance.method, *instance.body_paths)
        refs = [*refs, body] if body is not None else refs
    if rule.scoped and any(persona not in ref.visible_to for ref in refs):
        return "404"
    if instance.method in WRITES and any(
        ref.acting is not None and persona not in ref.acting for ref in refs
    ):
        return "403"
    return "allowed"


def send(world: World, instance: Instance, persona: str, url: str | None = None) -> Any:
    """Make the request of ``instance`` as ``persona`` (with its registered body)."""
    url = url or instance.url
    method = instance.method
    body = None
    if method in WRITES:
        body = {**(world.payload(method, *instance.body_paths) or {}), **(instance.body or {})}
    if instance.api:
        client = world.api(persona)
        with _same_cookies(client):
            return client.request(method, url, json=body, follow_redirects=False)
    browser = world.ui(persona)
    if method == "GET":
        return browser.get(url, follow_redirects=False)
    with _same_cookies(browser.client):
        if method == "POST":
            return browser.post(url, body)
        return browser.client.request(
            method, url, headers={"X-CSRF-Token": browser.csrf(), "Origin": BASE_URL}
        )


@contextlib.contextmanager
def _same_cookies(client: Any) -> Iterator[None]:
    """The client's cookies as they were afterwards: a sign-in or sign-out (logout, a new
    password) must not change who the persona's client is for the next request."""
    jar = list(client.cookies.jar)
    try:
        yield
    finally:
        client.cookies.clear()
        for cookie in jar:
            client.cookies.jar.set_cookie(cookie)


def verdict(instance: Instance, persona: str, outcome: str, response: Any) -> str | None:
    """What is wrong with ``response`` (``None`` when it is what the rule promises)."""
    status = response.status_code
    if status >= 500:
        return f"{status} server error"
    if outcome == "public":
        return "a public route asked for a sign-in (401)" if status == 401 else None
    if outcome == "login":
        if instance.api:
            return None if status == 401 else f"anonymous got {status}, expected 401"
        location = response.headers.get("location", "")
        if status == 303 and location.startswith("/login?next="):
            return None
        return f"anonymous got {status} {location}, expected a 303 to /login?next=..."
    if outcome in ("403", "404"):
        return None if str(status) == outcome else f"got {status}, expected {outcome}"
    if status in (401, 403, 404):
        return f"got {status}, expected to be let through ({response.text[:160]!r})"
    return None


@pytest.fixture(scope="module")
def matrix(world: World) -> dict[str, Any]:
    """The route instances of the world's app, with the world's snapshot and fingerprint."""
    return {"matrix": expand(world), "snapshot": world.snapshot(), "print": world.fingerprint()}


@pytest.mark.parametrize("module", MODULES)
def test_access_matrix(world: World, matrix: dict[str, Any], module: str) -> None:
    """Every instance of the module's routes answers every persona as its rule declares,
    refused writes change nothing, and other_team never sees owner's team's records."""
    expansion: Matrix = matrix["matrix"]
    snapshot, baseline = matrix["snapshot"], matrix["print"]
    failures: list[str] = []
    if module in world.build_errors:
        failures.append(f"the builder of {module} failed:\n{world.build_errors[module]}")
    failures += expansion.problems[module]
    lists = mine = searched = 0
    instances = [i for i in expansion.instances if i.module == module]
    try:
        for instance in instances:
            failures += _scoping_declared(world, instance)
            for persona in PERSONAS:
                outcome = expected(instance, persona, world)
                try:
                    response = send(world, instance, persona)
                except Exception as exc:  # a real client would have got a 500
                    failures.append(f"{instance} as {persona}: the app raised {exc!r}")
                    if instance.method in WRITES:
                        failures += _after_write(world, instance, persona, None, snapshot, baseline)
                    continue
                wrong = verdict(instance, persona, outcome, response)
                if wrong:
                    failures.append(f"{instance} as {persona}: {wrong}")
                if instance.method in WRITES:
                    failures += _after_write(world, instance, persona, response, snapshot, baseline)
                elif persona == "other_team":
                    failures += _leaks(instance, response)
                    if outcome == "allowed" and not instance.refs:
                        lists += 1
                        mine += MINE in response.text
                    try:
                        again = send(world, instance, persona, _with_search(instance.url))
                    except Exception as exc:
                        failures.append(f"{instance} searched: the app raised {exc!r}")
                        continue
                    failures += _leaks(instance, again, "searched")
                    if again.status_code >= 500:
                        failures.append(f"{instance} searched: {again.status_code}")
                elif persona == "owner" and _lists_marker(world, instance):
                    searched += 1
            now = world.fingerprint() if instance.method == "GET" else baseline
            if now != baseline:
                changed = sorted(t for t in now if now[t] != baseline.get(t))
                failures.append(f"{instance}: a GET changed {', '.join(changed)}")
                world.restore(snapshot, changed)
    finally:
        world.restore(snapshot)
    checked = len(instances) * len(PERSONAS)
    print(
        f"\n{module}: {len(instances)} route instances x {len(PERSONAS)} personas = {checked};"
        f" other_team saw its own records on {mine} of the {lists} lists it may read"
    )
    # the leak check is not vacuous: the lists other_team may read show it its own records,
    # and searching for the marker finds owner's records for owner
    if lists and not mine:
        failures.append(f"none of the {lists} lists of {module} showed other_team {MINE}")
    if module == "core" and searched < 2:
        failures.append(f"owner's searches for {SEARCH!r} found none of owner's records")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)


def _with_search(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}q={SEARCH}"


def _lists_marker(world: World, instance: Instance) -> bool:
    try:
        response = send(world, instance, "owner", _with_search(instance.url))
    except Exception:  # reported by the other_team's search of the same route
        return False
    return response.status_code == 200 and MARKER in response.text


def _scoping_declared(world: World, instance: Instance) -> list[str]:
    """A route whose path (or body) names a record some persona may not see must be declared
    scoped."""
    body = world.body_ref(instance.method, *instance.body_paths)
    refs = [*instance.refs, body] if body is not None else instance.refs
    hidden = [r for r in refs if r.visible_to != EVERYONE]
    if hidden and not instance.rule.scoped and instance.rule.public is None:
        return [
            f"{instance}: the path names a record not everyone may see"
            f" ({hidden[0].value}); declare the route scoped=True and answer 404"
        ]
    return []


def _leaks(instance: Instance, response: Any, how: str = "") -> list[str]:
    text = response.text
    for _, value in parse_qsl(urlsplit(instance.url).query):
        text = text.replace(value, "")  # the request's own words coming back are no leak
    if MARKER in text:
        at = text.index(MARKER)
        context = text[max(0, at - 80) : at + 40]
        return [f"{instance} {how}: other_team was shown {MARKER}: ...{context!r}..."]
    return []


def _after_write(
    world: World,
    instance: Instance,
    persona: str,
    response: Any,
    snapshot: Any,
    baseline: dict[str, str],
) -> list[str]:
    """A refused write changed nothing; an allowed one is undone."""
    now = world.fingerprint()
    if now == baseline:
        return []
    changed = sorted(t for t in now if now[t] != baseline.get(t))
    problems = []
    if response is not None and response.status_code in (401, 403, 404):
        problems.append(
            f"{instance} as {persona}: refused ({response.status_code}) but wrote to"
            f" {', '.join(changed)}"
        )
    world.restore(snapshot, changed)
    if world.fingerprint() != baseline:
        problems.append(f"{instance} as {persona}: the world could not be restored")
    return problems
