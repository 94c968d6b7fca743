"""Sessions, CSRF, passwords and headers, as the shared security list asks.

- every sign-in is a new session id, and a cookie planted before it does not survive;
- logout, a password change and deactivation end sessions and API tokens;
- cookies are HttpOnly and SameSite, and Secure over HTTPS (behind a TLS proxy too);
- passwords are Argon2 hashes, rehashed on sign-in when the parameters rise;
- failed sign-ins are throttled (429) per account and per address, on the API and the UI;
- every kind of response carries the security headers;
- a form post without a valid token, from a foreign origin or marked cross-site is refused
  on every unsafe route of the route table, and nothing changes (that no GET changes the
  database is checked for every route by the access matrix, ``test_access_matrix.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core import auth
from core.models import ApiToken, AuditLog, User
from core.web.app import create_app
from tests.security.r_kit import (
    ADMIN,
    BASE_URL,
    ORIGIN,
    PASSWORD,
    add_user,
    bearer,
    browser,
    cookies_set,
    token_for,
)

SELLER = "seller@example.com"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def app(crm) -> Any:
    """The web app of the ``crm`` fixture, with a salesperson ``SELLER`` in team north."""
    add_user(crm, SELLER, team="north")
    return create_app(crm)


def _api_login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def _plant(client: TestClient, cookie: str) -> None:
    """Replace the client's session cookie by ``cookie``."""
    client.cookies.delete("crm_session")
    client.cookies.set("crm_session", cookie, domain="testserver.local")  # as the server set it


def _signed_in_as(client: TestClient) -> str | None:
    response = client.get("/api/me")
    return response.json()["email"] if response.status_code == 200 else None


# --- sessions -----------------------------------------------------------------------------


def test_every_sign_in_is_a_new_session_and_a_planted_cookie_does_not_survive(crm, app):
    add_user(crm, "mallory@example.com", team="north")
    attacker = TestClient(app, base_url=BASE_URL)
    assert _api_login(attacker, "mallory@example.com").status_code == 200
    planted = attacker.cookies.get("crm_session")
    # the victim's browser carries the attacker's session cookie, then the victim signs in
    victim = browser(app)
    _plant(victim.client, planted)
    assert _signed_in_as(victim.client) == "mallory@example.com"
    assert victim.login(SELLER).status_code == 303
    issued = victim.client.cookies.get("crm_session")
    assert issued != planted
    assert _signed_in_as(victim.client) == SELLER
    assert _signed_in_as(attacker) == "mallory@example.com"  # the planted one stays the attacker's

    # two sign-ins of one person within the same second are two sessions with different ids
    first, second = TestClient(app), TestClient(app)
    assert _api_login(first, SELLER).status_code == 200
    assert _api_login(second, SELLER).status_code == 200
    ids = {first.cookies.get("crm_session"), second.cookies.get("crm_session"), issued}
    assert len(ids) == 3
    assert _signed_in_as(first) == _signed_in_as(second) == SELLER  # signing in ends nothing


def test_logout_ends_every_session_of_the_user_and_the_token_it_was_called_with(crm, app):
    laptop, phone = browser(app, SELLER), browser(app, SELLER)
    api = TestClient(app)
    assert _api_login(api, SELLER).status_code == 200
    first, second = token_for(crm, SELLER, "first"), token_for(crm, SELLER, "second")
    old_cookie = laptop.client.cookies.get("crm_session")

    assert laptop.post("/logout").status_code == 303
    for client in (laptop, phone):
        _plant(client.client, old_cookie)
        assert client.get("/ui/customer", follow_redirects=False).status_code == 303
    assert api.get("/api/me").status_code == 401
    # a token client signing out revokes the token it used, not the user's other tokens
    assert api.get("/api/me", headers=bearer(first)).status_code == 200
    assert api.post("/api/auth/logout", headers=bearer(first)).status_code == 204
    assert api.get("/api/me", headers=bearer(first)).status_code == 401
    assert api.get("/api/me", headers=bearer(second)).status_code == 200
    with crm.db.session() as session:
        revoked = session.scalars(select(ApiToken.name).where(ApiToken.revoked_at.is_not(None)))
        assert list(revoked) == ["first"]


def test_a_password_change_ends_every_session_and_api_token(crm, app, cli):
    laptop, phone = browser(app, SELLER), browser(app, SELLER)
    secret = token_for(crm, SELLER)
    api = TestClient(app)
    assert api.get("/api/me", headers=bearer(secret)).status_code == 200
    changed = laptop.post(
        "/account/password",
        {"current": PASSWORD, "new": "New-pass-456!", "confirm": "New-pass-456!"},
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/login"
    assert phone.get("/ui/customer", follow_redirects=False).status_code == 303
    assert laptop.get("/ui/customer", follow_redirects=False).status_code == 303
    assert api.get("/api/me", headers=bearer(secret)).status_code == 401

    # the administrator's command does the same
    again = browser(app, SELLER, "New-pass-456!")
    secret = token_for(crm, SELLER)
    result = cli("users", "set-password", SELLER, "--password", "Third-pass-789!")
    assert result.exit_code == 0, result.output
    assert again.get("/ui/customer", follow_redirects=False).status_code == 303
    assert api.get("/api/me", headers=bearer(secret)).status_code == 401
    assert browser(app).login(SELLER, "Third-pass-789!").status_code == 303


def test_deactivation_ends_every_session_and_api_token(crm, app):
    seller = browser(app, SELLER)
    secret = token_for(crm, SELLER)
    admin = browser(app, *ADMIN)
    with crm.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == SELLER))
    assert admin.post(f"/admin/users/{user_id}", {"deactivate": "1"}).status_code == 303
    assert seller.get("/ui/customer", follow_redirects=False).status_code == 303
    assert TestClient(app).get("/api/me", headers=bearer(secret)).status_code == 401
    refused = browser(app).login(SELLER)
    assert refused.status_code == 401 and "Wrong e-mail or password." in refused.text


# --- cookies ------------------------------------------------------------------------------


def test_cookies_are_httponly_samesite_and_secure_over_https(crm, app):
    secure = browser(app, base_url="https://testserver")
    seen: dict[str, Any] = {}
    seen.update(cookies_set(secure.get("/login?lang=vi")))
    seen.update(cookies_set(secure.login(SELLER)))
    api = TestClient(app, base_url="https://testserver")
    seen["api session"] = cookies_set(_api_login(api, SELLER))["crm_session"]
    assert {"crm_session", "crm_csrf", "crm_lang", "api session"} <= set(seen)
    for name, cookie in seen.items():
        assert {"httponly", "secure", "samesite"} <= cookie.flags, (name, cookie.attributes)
    assert seen["crm_session"].attributes["samesite"] == "lax"
    assert seen["api session"].attributes["samesite"] == "lax"
    assert seen["crm_csrf"].attributes["samesite"] == "strict"
    # a message left for the next page (a cookie too) is Secure as well
    admin = browser(app, *ADMIN, base_url="https://testserver")
    with crm.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == SELLER))
    saved = admin.post(f"/admin/users/{user_id}", {"roles": "sales", "team": "north"})
    assert saved.status_code == 303
    flash = cookies_set(saved)
    assert "crm_flash" in flash and "secure" in flash["crm_flash"].flags

    # over plain HTTP (a developer's machine) the session cookie cannot be Secure
    plain = cookies_set(browser(app).login(SELLER))["crm_session"]
    assert "secure" not in plain.flags and "httponly" in plain.flags


def test_behind_a_tls_proxy_cookies_are_secure_and_sign_in_rehashes_to_argon2(crm, serve):
    """A real ``crm serve``: it trusts ``X-Forwarded-Proto`` from its loopback proxy, and it
    hashes with the product's Argon2 parameters (the test process uses the lightest ones, so
    the user below has a hash made with lower parameters, as after a parameter rise)."""
    import httpx
    from pwdlib.hashers.argon2 import Argon2Hasher

    add_user(crm, SELLER)
    with crm.db.session() as session:
        old_hash = session.scalar(select(User.password_hash).where(User.email == SELLER))
    product = Argon2Hasher()  # the product's hasher: pwdlib's recommended Argon2id parameters
    assert old_hash.startswith("$argon2id$") and product.check_needs_rehash(old_hash)

    server = serve()
    body = {"email": SELLER, "password": PASSWORD}
    proxied = httpx.post(
        f"{server.base}/api/auth/login", json=body, headers={"X-Forwarded-Proto": "https"}
    )
    assert proxied.status_code == 200, proxied.text
    cookie = cookies_set(proxied)["crm_session"]
    assert {"secure", "httponly", "samesite"} <= cookie.flags
    direct = httpx.post(f"{server.base}/api/auth/login", json=body)
    assert direct.status_code == 200 and "secure" not in cookies_set(direct)["crm_session"].flags

    with crm.db.session() as session:
        new_hash = session.scalar(select(User.password_hash).where(User.email == SELLER))
    assert new_hash != old_hash and new_hash.startswith("$argon2id$")
    assert not product.check_needs_rehash(new_hash)
    assert product.verify(PASSWORD, new_hash)
    again = httpx.post(f"{server.base}/api/auth/login", json=body)
    assert again.status_code == 200


# --- login throttling ---------------------------------------------------------------------


def _failures(crm: Any, **where: Any) -> int:
    query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "login_failed")
    for name, value in where.items():
        query = query.where(getattr(AuditLog, name) == value)
    with crm.db.session() as session:
        return session.scalar(query)


def test_failed_sign_ins_are_throttled_per_account_on_the_api_and_the_ui(crm, app):
    add_user(crm, "colleague@example.com", team="north")
    ui = browser(app)
    api = TestClient(app)
    for attempt in range(auth.MAX_FAILED_LOGINS):
        if attempt % 2:
            assert _api_login(api, SELLER, "wrong-password").status_code == 401
        else:
            assert ui.login(SELLER, "wrong-password").status_code == 401
    # now even the right password is refused without being checked, on both doors
    throttled = ui.login(SELLER)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text and "crm_session" not in throttled.cookies
    assert _api_login(api, SELLER).status_code == 429
    assert _failures(crm, actor=SELLER) == auth.MAX_FAILED_LOGINS
    # another account from the same address is not affected
    assert ui.login("colleague@example.com").status_code == 303


def test_failed_sign_ins_from_one_address_are_throttled_whatever_the_account(crm, app):
    """Password spraying: one password tried on many accounts, each below its own limit."""
    sprayer = ("198.51.100.7", 40000)
    api = TestClient(app, client=sprayer)
    ui = browser(app, client=sprayer)
    for i in range(auth.MAX_FAILED_LOGINS_PER_IP):
        target = SELLER if i % 5 == 0 else f"someone{i}@example.com"
        door = _api_login(api, target, "Spring2026!") if i % 2 else ui.login(target, "Spring2026!")
        assert door.status_code == 401, i
    assert _failures(crm, actor=SELLER) < auth.MAX_FAILED_LOGINS
    assert _failures(crm, ip=sprayer[0]) == auth.MAX_FAILED_LOGINS_PER_IP
    assert _api_login(api, SELLER).status_code == 429
    assert ui.login(SELLER).status_code == 429
    # the same person from their own address signs in
    assert _api_login(TestClient(app, client=("203.0.113.20", 5000)), SELLER).status_code == 200
    assert browser(app, client=("203.0.113.20", 5001)).login(SELLER).status_code == 303


# --- headers ------------------------------------------------------------------------------


def _assert_security_headers(response: Any, what: str) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, (what, response.status_code, policy)
    assert "default-src 'self'" in policy, what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("referrer-policy") == "same-origin", what
    assert response.headers.get("x-frame-options") == "DENY", what


def test_every_kind_of_response_carries_the_security_headers(crm, app):
    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    # a route that fails, on the real app and its real middleware, for the 500 answer
    app.add_api_route("/api/r-test-failure", boom, methods=["GET"])
    seller = browser(app, SELLER)
    admin = browser(app, *ADMIN)
    anonymous = TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)
    html = {"Accept": "text/html"}
    kinds = {
        "HTML page": (admin.get("/"), 200, "text/html"),
        "login page": (anonymous.get("/login"), 200, "text/html"),
        "HTML fragment": (
            admin.get("/ui/customer", headers={**html, "HX-Request": "true"}),
            200,
            "text/html",
        ),
        "redirect to sign in": (
            anonymous.get("/ui/customer", headers=html, follow_redirects=False),
            303,
            None,
        ),
        "HTML 403 page": (seller.get("/admin/users"), 403, "text/html"),
        "HTML 404 page": (seller.get("/ui/customer/999999"), 404, "text/html"),
        "JSON": (anonymous.get("/api/health"), 200, "application/json"),
        "JSON 401": (anonymous.get("/api/me"), 401, "application/json"),
        "JSON 404": (seller.client.get("/api/customers/999999"), 404, "application/json"),
        "JSON 422": (
            seller.client.post("/api/customers", json={"kind": 7}, headers=ORIGIN),
            422,
            "application/json",
        ),
        "cross-site refusal": (
            seller.client.post("/api/auth/logout", headers={"Origin": "https://evil.example"}),
            403,
            "application/json",
        ),
        "CSV export": (admin.get("/ui/customer/export.csv"), 200, "text/csv"),
        "static file": (anonymous.get("/static/core/ui.js"), 200, "text/javascript"),
        "API documentation": (anonymous.get("/docs"), 200, "text/html"),
        "OpenAPI schema": (anonymous.get("/openapi.json"), 200, "application/json"),
        "unhandled error": (anonymous.get("/api/r-test-failure"), 500, None),
    }
    for what, (response, status, content_type) in kinds.items():
        assert response.status_code == status, (what, response.status_code, response.text[:200])
        if content_type:
            assert response.headers["content-type"].startswith(content_type), what
        _assert_security_headers(response, what)
    assert "attachment" in kinds["CSV export"][0].headers["content-disposition"]
    assert kinds["unhandled error"][0].text == "Internal Server Error"  # no traceback shown


# --- CSRF over the route table ------------------------------------------------------------

CSRF_REFUSED = "the form expired or came from elsewhere"
CROSS_SITE_REFUSED = "cross-site request refused"


def test_every_unsafe_route_refuses_forged_and_cross_site_requests(world):
    """Every unsafe route of the route table (every module enabled), with the body that
    would otherwise go through, sent with the administrator's session cookie: UI forms
    without the token, with another session's token, from a foreign Origin or marked
    ``Sec-Fetch-Site: cross-site``; API calls from a foreign Origin, marked cross-site or
    with no origin at all. Each is refused (403) by the CSRF defence, and nothing changes."""
    from tests.security.test_access_matrix import expand

    admin = world.ui("admin")
    cookies = dict(admin.client.cookies)
    token = admin.csrf()
    stranger = browser(world.app, *ADMIN)  # a session of its own, with its own token
    foreign_token = stranger.csrf()
    assert foreign_token != token
    baseline, snapshot = world.fingerprint(), world.snapshot()
    instances = [i for i in expand(world).instances if i.method in UNSAFE]
    assert len(instances) > 100
    problems = []
    tried = 0
    for instance in instances:
        client = TestClient(world.app, base_url=BASE_URL, cookies=cookies)
        body = {
            **(world.payload(instance.method, *instance.body_paths) or {}),
            **(instance.body or {}),
        }
        if instance.api:
            attempts = {
                "foreign Origin": ({"Origin": "https://evil.example"}, CROSS_SITE_REFUSED),
                "Sec-Fetch-Site: cross-site": (
                    {"Sec-Fetch-Site": "cross-site", "Origin": BASE_URL},
                    CROSS_SITE_REFUSED,
                ),
                "no Origin at all": ({}, CROSS_SITE_REFUSED),
            }
            for what, (headers, refusal) in attempts.items():
                response = client.request(
                    instance.method, instance.url, json=body or None, headers=headers
                )
                problems += _refused(instance, what, response, refusal)
        else:
            html = {"Accept": "text/html"}
            attempts = {
                "no token": ({**body}, {**html, **ORIGIN}, CSRF_REFUSED),
                "another session's token": (
                    {**body, "csrf_token": foreign_token},
                    {**html, **ORIGIN},
                    CSRF_REFUSED,
                ),
                "foreign Origin": (
                    {**body, "csrf_token": token},
                    {**html, "Origin": "https://evil.example"},
                    CROSS_SITE_REFUSED,
                ),
                "Sec-Fetch-Site: cross-site": (
                    {**body, "csrf_token": token},
                    {**html, **ORIGIN, "Sec-Fetch-Site": "cross-site"},
                    CROSS_SITE_REFUSED,
                ),
            }
            for what, (form, headers, refusal) in attempts.items():
                response = client.request(
                    instance.method,
                    instance.url,
                    data=form,
                    headers=headers,
                    follow_redirects=False,
                )
                problems += _refused(instance, what, response, refusal)
        tried += 1
        if world.fingerprint() != baseline:
            problems.append(f"{instance.method} {instance.url}: a refused request wrote")
            world.restore(snapshot)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    # the same session, token and origin get through: the refusals above are the CSRF defence
    allowed = admin.post("/account/language", {"language": "en"})
    assert allowed.status_code == 303
    print(f"\n{tried} unsafe route instances refused every forged variant")


def _refused(instance: Any, what: str, response: Any, refusal: str) -> list[str]:
    if response.status_code == 403 and refusal in response.text:
        return []
    return [
        f"{instance.method} {instance.url} ({what}): {response.status_code}"
        f" {response.text[:160]!r}, expected 403 {refusal!r}"
    ]
