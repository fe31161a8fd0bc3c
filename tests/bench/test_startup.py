"""The start-up benchmark's ceilings, as same-run ratios against a bare interpreter.

Not a timing assertion: each figure is a ratio of medians measured in the same run,
interleaved with `python -c pass`, so a slow machine slows both sides alike; the ceiling
is on CPU time, which a busy machine does not inflate the way it does the wall clock.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.startup import CEILING, HELP, WHOAMI


def test_zapctl_starts_within_its_ratio_ceilings() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "startup", "--runs", "7"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    ratios = report["cpu_ratio_to_baseline"]
    assert set(report["ratio_to_baseline"]) == set(ratios)  # the wall-clock ratios too
    assert report["ceiling"] == CEILING
    assert ratios[WHOAMI] <= CEILING[WHOAMI], report
    assert ratios[HELP] <= CEILING[HELP], report
    assert report["within_ceiling"] is True
