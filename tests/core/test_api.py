"""The API: sign-in, tokens, permissions, CSRF, headers, and plugin routes mounted per module."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import auth, modules, users
from core.models import AuditLog
from core.web.app import create_app

ADMIN = ("admin@example.com", "Admin-pass-123")


@pytest.fixture
def app_for(crm):
    def build(instance=None):
        instance = instance or crm
        instance.refresh()
        return TestClient(create_app(instance), base_url="http://testserver")

    return build


def token_for(crm, email, password="Password-123", roles=("sales",)):
    with crm.db.write() as session:
        user = session.scalar(select(users.User).where(users.User.email == email))
        if user is None:
            user = users.create_user(session, email, email, password, roles)
        return auth.create_token(session, user, "test").secret


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_health_is_public_and_everything_else_needs_a_login(crm, app_for):
    client = app_for()
    assert client.get("/api/health").json() == {"status": "ok"}
    for path in ("/api/me", "/api/modules", "/api/checklist", "/api/audit"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"


def test_login_logout_and_session_revocation(crm, app_for):
    client = app_for()
    response = client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 200
    assert "admin" in response.json()["roles"]
    assert "httponly" in response.headers["set-cookie"].lower()
    cookie = client.cookies.get("crm_session")
    assert client.get("/api/me").json()["email"] == ADMIN[0]
    assert (
        client.post("/api/auth/logout", headers={"Origin": "http://testserver"}).status_code == 204
    )
    client.cookies.set("crm_session", cookie)  # replaying the old cookie no longer works
    assert client.get("/api/me").status_code == 401


def test_wrong_password_is_refused_audited_and_throttled(crm, app_for):
    client = app_for()
    for _ in range(auth.MAX_FAILED_LOGINS):
        wrong = client.post("/api/auth/login", json={"email": ADMIN[0], "password": "nope"})
        assert wrong.status_code == 401
    assert (
        client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).status_code
        == 429
    )
    with crm.db.session() as session:
        failures = session.scalars(select(AuditLog).where(AuditLog.action == "login_failed")).all()
    assert len(failures) == auth.MAX_FAILED_LOGINS and failures[0].actor == ADMIN[0]


def test_tokens_work_until_revoked_or_user_deactivated(crm, app_for, cli):
    client = app_for()
    secret = cli("users", "token", "create", "--user", ADMIN[0], "--name", "ci").stdout.strip()
    assert secret.startswith("crm_")
    assert client.get("/api/me", headers=bearer(secret)).status_code == 200
    assert cli("users", "token", "revoke", "--user", ADMIN[0], "--name", "ci").exit_code == 0
    revoked = client.get("/api/me", headers=bearer(secret))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    other = token_for(crm, "seller@example.com")
    assert client.get("/api/me", headers=bearer(other)).status_code == 200
    cli("users", "deactivate", "seller@example.com")
    assert client.get("/api/me", headers=bearer(other)).status_code == 401
    assert client.get("/api/me", headers=bearer("crm_forged")).status_code == 401


def test_only_hashes_of_tokens_are_stored(crm):
    secret = token_for(crm, "seller@example.com")
    with crm.db.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT prefix, token_hash FROM core_api_token").all()
    assert all(secret not in row[1] for row in stored)
    assert stored[0][0] == secret[:10]


def test_permissions_are_enforced(crm, app_for):
    client = app_for()
    seller = token_for(crm, "seller@example.com")
    manager = token_for(crm, "boss@example.com", roles=("manager",))
    assert client.get("/api/modules", headers=bearer(seller)).status_code == 403
    assert client.get("/api/modules", headers=bearer(manager)).status_code == 200
    assert client.get("/api/audit", headers=bearer(seller)).status_code == 403


def test_plugin_routes_exist_only_while_the_module_is_enabled(crm, app_for):
    seller = token_for(crm, "seller@example.com")
    admin = token_for(crm, ADMIN[0])
    assert app_for().get("/api/sample/notes", headers=bearer(admin)).status_code == 404
    modules.enable(crm, ["sample"])
    client = app_for()
    listed = client.get("/api/sample/notes", headers=bearer(seller))
    assert listed.status_code == 200 and listed.json() == [{"text": "welcome", "id": 1}]
    assert (
        client.post("/api/sample/notes", json={"text": "x"}, headers=bearer(seller)).status_code
        == 403
    )
    created = client.post("/api/sample/notes", json={"text": "Ghi chú"}, headers=bearer(admin))
    assert created.status_code == 201
    bad = client.post("/api/sample/notes", json={"text": ""}, headers=bearer(admin))
    assert bad.status_code == 422
    with crm.db.session() as session:
        row = session.scalars(
            select(AuditLog)
            .where(AuditLog.model == "sample_note", AuditLog.action == "create")
            .order_by(AuditLog.id)
        ).all()[-1]
    assert row.actor == ADMIN[0] and row.after["text"] == "Ghi chú"
    modules.disable(crm, "sample")
    assert app_for().get("/api/sample/notes", headers=bearer(admin)).status_code == 404


def test_a_plugin_failing_to_give_routers_does_not_break_the_app(make_crm, crm, app_for):
    other = make_crm(load_plugins="noisy,sample")
    modules.enable(other, ["noisy", "sample"])
    client = app_for(other)
    assert "noisy" in client.app.state.plugin_errors
    assert client.get("/api/health").status_code == 200


def test_cross_site_cookie_requests_are_refused(crm, app_for):
    client = app_for()
    client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert (
        client.post("/api/auth/logout", headers={"Origin": "https://evil.example"}).status_code
        == 403
    )
    assert (
        client.post("/api/auth/logout", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    )
    assert client.post("/api/auth/logout").status_code == 403  # cookie but no origin at all
    assert client.get("/api/me").status_code == 200  # still signed in


def test_security_headers(crm, app_for):
    headers = app_for().get("/api/health").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_openapi_lists_plugin_operations(crm, app_for):
    modules.enable(crm, ["sample"])
    paths = app_for().get("/openapi.json").json()["paths"]
    assert "/api/sample/notes" in paths and "/api/me" in paths


def test_api_docs_are_served_from_local_files(crm, app_for):
    client = app_for()
    page = client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "<script>" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    bundle = client.get("/static/core/vendor/swagger-ui/swagger-ui-bundle.js")
    assert (
        bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:5000] + bundle.text[-5000:]
    )


def test_api_docs_can_be_hidden(make_crm, crm):
    hidden = make_crm(public_api_docs="false")
    client = TestClient(create_app(hidden))
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404


def test_reads_survive_a_dropped_database_connection(crm):
    if crm.db.dialect != "postgresql":
        pytest.skip("an SQLite file has no server connection to drop")
    secret = token_for(crm, "seller@example.com")
    with TestClient(create_app(crm)) as client:  # one event-loop thread, one reader
        assert client.get("/api/me", headers=bearer(secret)).status_code == 200
        assert client.get("/api/customers", headers=bearer(secret)).status_code == 200
        with crm.db.engine.connect() as admin:
            killed = admin.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar()
        assert killed >= 1
        assert client.get("/api/me", headers=bearer(secret)).status_code == 200
        assert client.get("/api/customers", headers=bearer(secret)).status_code == 200
