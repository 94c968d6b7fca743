"""Every API operation, the enabled modules' included, refuses anonymous callers unless its
route declares itself public (``core.web.access.public``, which also tells the OpenAPI schema),
and the schema publishes every core route's declaration as ``x-crm-access``.

The access matrix (``tests/security/test_access_matrix.py``) checks every declared rule for
every kind of user with the built-in modules; this test covers a third-party-style module
(``sample``) that declares nothing, which the schema and the anonymous check still cover.
"""

import re

from fastapi.testclient import TestClient

from core import modules
from core.web.access import KEY, iter_routes
from core.web.app import create_app

EXPECTED_PUBLIC = {("get", "/api/health"), ("post", "/api/auth/login")}


def test_every_operation_needs_a_login_unless_it_says_why(crm):
    modules.enable(crm, ["sample"])
    app = create_app(crm)
    client = TestClient(app)
    schema = client.get("/openapi.json").json()
    assert schema["security"] == [{"bearer": []}, {"session": []}]
    public, protected = set(), set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            url = re.sub(r"{[^}]+}", "1", path)
            response = client.request(
                method.upper(), url, json={}, headers={"Origin": "http://testserver"}
            )
            if operation.get("security") == []:
                public.add((method, path))
                assert response.status_code != 401, (method, path)
            else:
                protected.add((method, path))
                assert response.status_code == 401, (method, path, response.status_code)
            if not path.startswith("/api/sample"):
                assert KEY in operation, f"{method} {path} publishes no access declaration"
    assert public == EXPECTED_PUBLIC
    declared_public = {
        (e.method.lower(), e.path)
        for e in iter_routes(app)
        if e.path.startswith("/api/") and e.access is not None and e.access.public
    }
    assert declared_public == EXPECTED_PUBLIC
    assert ("get", "/api/sample/notes") in protected  # a module's routes are covered too
    assert len(protected) >= 15  # core, customers and sample: the schema is not empty
