"""The way a plugin author ships, for real: a fresh virtual environment gets the product (built
from this checkout, not editable), a scaffolded plugin as a wheel, another in editable mode and
a broken third-party plugin; there ``crm`` works, lists the broken plugin with its error,
enables the new ones, and the plugins' own tests pass with that environment's pytest.

Slow (about a minute, mostly installing the product's dependencies; pip's cache is used).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "dists" / "crm-broken"
#: What building the product needs from the checkout (caches and tests left out).
PRODUCT_FILES = ("pyproject.toml", "README.md", "cli.py", "core", "plugins")
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


class Venv:
    """A virtual environment and a way to run its programs with a clean environment."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env
        self.bin = path / ("Scripts" if os.name == "nt" else "bin")

    def run(self, program: str, *args: str, cwd: Path, timeout: int = 600) -> str:
        """Run ``program`` of this environment; fail, with its output, unless it exits 0."""
        done = subprocess.run(
            [str(self.bin / program), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"{program} {' '.join(args)} exited {done.returncode}\n"
            f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
        )
        return done.stdout

    def pip(self, *args: str, cwd: Path) -> str:
        """``python -m pip ARGS`` quietly, with pip's cache."""
        return self.run("python", "-m", "pip", "-q", *args, cwd=cwd)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The inherited environment without anything that would reach this checkout or its
    settings: no ``PYTHONPATH``, no outer virtual environment, no ``CRM_*`` but a database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRM_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["CRM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'crm.db'}"
    env["CRM_SECRET_KEY"] = "wheel-test-secret-key-0123456789abcdef"
    return env


def test_wheel_in_a_fresh_venv(tmp_path):
    started = time.monotonic()
    venv = Venv(tmp_path / "venv", clean_env(tmp_path))
    subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True, timeout=120)

    product = tmp_path / "product"
    for name in PRODUCT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, product / name, ignore=COPY_IGNORE)
        else:
            product.mkdir(exist_ok=True)
            shutil.copy2(source, product / name)
    venv.pip("install", str(product), cwd=tmp_path)

    # the installed product writes the plugins (its templates are package data)
    venv.run("crm", "plugins", "new", "wheeled", "--dir", str(tmp_path / "wheeled"), cwd=tmp_path)
    venv.run("crm", "plugin", "new", "edited", "--dir", str(tmp_path / "edited"), cwd=tmp_path)
    venv.pip(
        "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(tmp_path / "wheeled"), cwd=tmp_path
    )
    (wheel,) = (tmp_path / "dist").glob("crm_wheeled-0.1.0-*.whl")
    broken = shutil.copytree(BROKEN, tmp_path / "crm-broken")  # builds write into the tree
    venv.pip("install", str(wheel), str(broken), "pytest>=8", "httpx>=0.27", cwd=tmp_path)
    venv.pip("install", "-e", f"{tmp_path / 'edited'}[test]", cwd=tmp_path)
    installed = time.monotonic()

    assert "Initialised" in venv.run(
        "crm", "init", "--admin-password", "Admin-pass-123", "--no-config", cwd=tmp_path
    )
    assert "modules" in venv.run("crm", "--help", cwd=tmp_path)

    plugins = {
        p["name"]: p
        for p in json.loads(venv.run("crm", "plugins", "list", "--format", "json", cwd=tmp_path))
    }
    assert plugins["broken"]["distribution"] == "crm-broken"
    assert plugins["broken"]["loaded"] is False
    assert any(
        "RuntimeError: crm_broken fails on import, on purpose" in e
        for e in plugins["broken"]["errors"]
    ), plugins["broken"]
    for name in ("wheeled", "edited"):
        assert plugins[name]["distribution"] == f"crm-{name}"
        assert plugins[name]["version"] == "0.1.0"
        assert plugins[name]["loaded"] is True
        assert plugins[name]["errors"] == []

    assert "Enabled: wheeled, edited" in venv.run(
        "crm", "modules", "enable", "wheeled", "edited", cwd=tmp_path
    )
    states = {
        m["name"]: m["state"]
        for m in json.loads(venv.run("crm", "modules", "list", "--format", "json", cwd=tmp_path))
    }
    assert states["wheeled"] == states["edited"] == "installed"
    assert venv.run("crm", "wheeled", "stats", cwd=tmp_path) == "notes: 0, customers: 0\n"

    # the wheel's tests, away from its source folder so that the installed package is tested
    where = venv.run(
        "python", "-c", "import crm_wheeled; print(crm_wheeled.__file__)", cwd=tmp_path
    )
    assert Path(where.strip()).is_relative_to(venv.path)
    tests = tmp_path / "wheeled-tests"
    shutil.copytree(tmp_path / "wheeled" / "tests", tests / "tests")
    shutil.copy2(tmp_path / "wheeled" / "pyproject.toml", tests)
    for folder, label in ((tests, "wheeled"), (tmp_path / "edited", "edited")):
        output = venv.run("pytest", "-p", "no:cacheprovider", cwd=folder)
        summary = output.strip().splitlines()[-1]
        assert re.search(r"\b\d+ passed\b", summary), (label, summary)
        assert not re.search(r"failed|skipped|error", summary), (label, summary)

    finished = time.monotonic()
    print(
        f"\nwheel test: install {installed - started:.0f} s,"
        f" checks and tests {finished - installed:.0f} s"
    )
