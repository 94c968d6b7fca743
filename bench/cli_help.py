"""How long `crm --help` takes, next to a bare Python start, measured in the same run.

Run: ``.venv/bin/python bench/cli_help.py [--runs 30]``. The CRM is initialised in a temporary
folder with every module enabled, so the help includes reading module states and loading
plugins. Target: a median under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.3


def median_seconds(command: list[str], runs: int, env: dict[str, str], cwd: str) -> float:
    """Median wall time of ``command`` over ``runs`` runs (after one warm-up)."""
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print both medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    crm = str(Path(sys.executable).with_name("crm"))
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{folder}/crm.db"}
        env.pop("CRM_LOAD_PLUGINS", None)
        for step in (
            ["init", "--admin-password", "Bench-pass-123"],
            ["modules", "enable", "--all"],
        ):
            subprocess.run([crm, *step], env=env, cwd=folder, capture_output=True, check=True)
        product = median_seconds([crm, "--help"], args.runs, env, folder)
        reference = median_seconds([sys.executable, "-c", "pass"], args.runs, env, folder)
    print(f"crm --help, median of {args.runs}:        {product * 1000:7.1f} ms")
    print(f"python -c pass (reference), median: {reference * 1000:7.1f} ms")
    print(f"ratio crm/python:                   {product / reference:7.2f}x")
    verdict = "met" if product < TARGET_SECONDS else "MISSED"
    print(f"target < {TARGET_SECONDS * 1000:.0f} ms:                       {verdict}")


if __name__ == "__main__":
    main()
