"""Every API operation, the enabled modules' included, refuses anonymous callers unless its
route declares itself public (``openapi_extra=PUBLIC``, which also tells the OpenAPI schema)."""

import re

from fastapi.testclient import TestClient

from core import modules
from core.web.app import create_app

EXPECTED_PUBLIC = {("get", "/api/health"), ("post", "/api/auth/login")}


def test_every_operation_needs_a_login_unless_it_says_why(crm):
    modules.enable(crm, ["sample"])
    client = TestClient(create_app(crm))
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
    assert public == EXPECTED_PUBLIC
    assert ("get", "/api/sample/notes") in protected  # a module's routes are covered too
    assert len(protected) >= 15  # core, customers and sample: the schema is not empty
