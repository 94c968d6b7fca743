"""What the browser tests share: Debian's Chromium through Playwright, and a served CRM.

Playwright never downloads a browser here: Chromium is Debian's (``apt-get install chromium``).
Without Playwright or Chromium the importing test module is skipped, unless
``CRM_REQUIRE_BROWSER=1`` (set by CI), which makes that an error.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT

CHROMIUM = "/usr/bin/chromium"
REQUIRED = os.environ.get("CRM_REQUIRE_BROWSER") == "1"
# The machine has no network: without these Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def require_browser() -> None:
    """Skip the calling module when Playwright or Chromium is missing (fail when required)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the machine
        if REQUIRED:
            raise
        pytest.skip("Playwright is not installed", allow_module_level=True)
    if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
        if REQUIRED:
            raise RuntimeError(f"CRM_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(env: dict[str, str], folder: Path, plugin_site: Path) -> Iterator[str]:
    """``crm serve`` on a free loopback port with ``env``; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with open(log, "w", encoding="utf-8") as output:  # a file: a pipe nobody reads fills up
        process = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", str(port)],
            env={
                **os.environ,
                **env,
                "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(plugin_site), str(ROOT)]),
            },
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"crm serve did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
