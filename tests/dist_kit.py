"""Making a plugin package in a folder look installed, for tests that run it in a subprocess."""

from __future__ import annotations

import os
from pathlib import Path


def installed_like_pip(package_dir: Path, name: str, site: Path) -> dict[str, str]:
    """Environment for a subprocess that sees ``package_dir`` as an installed distribution.

    A dist-info with the package's entry point goes into ``site`` (what ``pip install`` would
    write); both folders go on ``PYTHONPATH``. Inherited ``CRM_*`` settings are dropped.
    """
    dist = site / f"crm_{name}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: crm-{name.replace('_', '-')}\nVersion: 0.1.0\n",
        encoding="utf-8",
    )
    (dist / "entry_points.txt").write_text(
        f"[crm.plugins]\n{name} = crm_{name}\n", encoding="utf-8"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRM_") or k in ("CRM_TEST_POSTGRES_URL", "CRM_REQUIRE_POSTGRES")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(package_dir)])
    return env


def run_plugin_tests(package_dir: Path, name: str, site: Path, db_url: str) -> str:
    """Run a plugin package's own tests with pytest in a subprocess, on ``db_url``'s kind of
    database, as after ``pip install``; fail unless all pass, and return pytest's summary."""
    import re
    import subprocess
    import sys

    backend = "postgres" if db_url.startswith("postgresql") else "sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--crm-db={backend}"],
        cwd=package_dir,
        env=installed_like_pip(package_dir, name, site),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary), summary
    assert not re.search(r"failed|skipped|error|xfail", summary), summary
    return summary
