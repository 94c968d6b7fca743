"""The tutorial (docs/tutorial.md) shows the example module's real code, and that code works.

Every listing marked ``<!-- file: PATH -->`` is the whole file, and every ``<!-- excerpt: PATH
-->`` a verbatim part of it; the example's own tests, written with the testing kit, pass on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.dist_kit import run_plugin_tests

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
EXAMPLE = ROOT / "examples" / "crm-loyalty"
LISTING = re.compile(r"<!-- (file|excerpt): (?P<path>\S+) -->\n```[^\n]*\n(?P<code>.*?)\n```", re.S)


def listings() -> list[tuple[str, str, str]]:
    """(kind, path, code) of every marked listing of the tutorial."""
    return [
        (m.group(1), m.group("path"), m.group("code"))
        for m in LISTING.finditer(TUTORIAL.read_text())
    ]


def test_the_tutorial_has_listings_of_every_step():
    paths = {path for _, path, _ in listings()}
    assert len(listings()) >= 12
    for part in ("points.py", "loyalty_0002_points.py", "events.py", "routes.py", "test_points.py"):
        assert any(p.endswith(part) for p in paths), part


@pytest.mark.parametrize(
    ("kind", "path", "code"), listings(), ids=[f"{k}:{p}" for k, p, _ in listings()]
)
def test_each_listing_is_the_example_code(kind, path, code):
    text = (ROOT / path).read_text(encoding="utf-8")
    if kind == "file":
        assert code == text.rstrip(), f"{path} differs from its listing in docs/tutorial.md"
    else:
        assert code in text, f"this excerpt is no longer in {path}:\n{code}"


def test_the_example_module_tests_pass(tmp_path, db_url):
    summary = run_plugin_tests(EXAMPLE, "loyalty", tmp_path / "site", db_url)
    assert re.search(r"\b2\d passed\b", summary), summary  # the skeleton's tests and the points'
