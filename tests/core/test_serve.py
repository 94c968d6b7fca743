"""`crm serve` as a real server process on loopback."""

import httpx


def test_serve_answers_with_enabled_module_routes(crm, cli, serve):
    cli.run("modules", "enable", "sample", check=True)
    secret = cli.run(
        "users", "token", "create", "--user", "admin@example.com", "--name", "t", check=True
    ).stdout.strip()
    server = serve()
    headers = {"Authorization": f"Bearer {secret}"}
    me = httpx.get(f"{server.base}/api/me", headers=headers)
    assert me.json()["email"] == "admin@example.com"
    notes = httpx.get(f"{server.base}/api/sample/notes", headers=headers)
    assert notes.status_code == 200 and notes.json()[0]["text"] == "welcome"
    assert httpx.get(f"{server.base}/api/sample/notes").status_code == 401
    assert "Serving on http://127.0.0.1" in server.stop()
