"""`crm serve` as a real server process on loopback."""

import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import FIXTURES, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_with_enabled_module_routes(crm, cli):
    import os

    cli.run("modules", "enable", "sample", check=True)
    secret = cli.run(
        "users", "token", "create", "--user", "admin@example.com", "--name", "t", check=True
    ).stdout.strip()
    port = free_port()
    env = {
        **os.environ,
        **cli.env,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(cli.site), str(ROOT)]),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)],
        env=env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base}/api/me", headers=headers).json()["email"] == "admin@example.com"
        notes = httpx.get(f"{base}/api/sample/notes", headers=headers)
        assert notes.status_code == 200 and notes.json()[0]["text"] == "welcome"
        assert httpx.get(f"{base}/api/sample/notes").status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert "Serving on http://127.0.0.1" in output
