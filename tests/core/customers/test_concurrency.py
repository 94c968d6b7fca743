"""Concurrent writes through a real server: no lost update, no 500 on a unique race."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


@pytest.fixture
def server(crm, cli, serve):
    """``crm serve`` with two workers on loopback, and an admin token."""
    secret = cli.run(
        "users", "token", "create", "--user", "admin@example.com", "--name", "c", check=True
    ).stdout.strip()
    return serve("--workers", "2").base, {"Authorization": f"Bearer {secret}"}


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
