"""Concurrent writes through a real server: no lost update, no 500 on a unique race."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT
from tests.core.test_serve import free_port


@pytest.fixture
def server(crm, cli):
    """``crm serve`` with two workers on loopback, and an admin token."""
    secret = cli.run(
        "users", "token", "create", "--user", "admin@example.com", "--name", "c", check=True
    ).stdout.strip()
    port = free_port()
    env = {
        **os.environ,
        **cli.env,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(cli.site), str(ROOT)]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import cli; cli.main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        cwd=cli.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(f"{base}/api/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base, {"Authorization": f"Bearer {secret}"}
    process.terminate()
    process.wait(timeout=20)


def test_two_creates_of_one_identity_give_one_201_and_one_409(server):
    base, headers = server
    with ThreadPoolExecutor(2) as pool:
        for attempt in range(5):
            body = {
                "display_name": f"Race {attempt}",
                "identities": [{"channel": "phone", "value": f"09123450{attempt:02d}"}],
            }
            futures = [
                pool.submit(
                    httpx.post, f"{base}/api/customers", json=body, headers=headers, timeout=30
                )
                for _ in range(2)
            ]
            codes = sorted(f.result().status_code for f in futures)
            assert codes == [201, 409], codes
    listed = httpx.get(f"{base}/api/customers", params={"q": "race"}, headers=headers).json()
    assert listed["total"] == 5


def test_two_edits_from_one_version_never_lose_an_update(server):
    base, headers = server
    created = httpx.post(
        f"{base}/api/customers", json={"display_name": "Lost Update"}, headers=headers
    ).json()
    url = f"{base}/api/customers/{created['id']}"
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(
                httpx.patch,
                url,
                json={"version": 1, "address": f"Street {n}"},
                headers=headers,
                timeout=30,
            )
            for n in (1, 2)
        ]
        responses = [f.result() for f in futures]
    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = httpx.get(url, headers=headers).json()
    assert stored["address"] == winner["address"] and stored["version"] == 2
