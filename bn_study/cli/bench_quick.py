"""bn-study-bench-quick: how long the quick path a new user tries first takes, end to end.

Times `bn-study-studies run fig1 --quick` (what `QUICK=1 make fig1` runs once bn-study is installed) in a fresh process
into a temporary results folder: the process start, the sweep, collecting, judging and the figure. README's quick-path
line is generated from what it writes (results/bench/quick.json).

    bn-study-bench-quick [--out results/bench]
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bn_study.files import write_json_atomic

COMMAND = "QUICK=1 make fig1"


def measure() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bn_study.cli.studies", "run", "fig1", "--quick", "--results", folder],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
    # provenance imports TensorFlow: only once the timed process has run, without this one holding the cores
    from bn_study.run import provenance

    info = provenance.provenance()
    return {
        "command": COMMAND,
        "seconds": round(seconds, 1),
        "date": datetime.date.today().isoformat(),
        "cpu": f"{info['cpu']} {info['isa_level']}",
        "cores": os.cpu_count(),
        "commit": info["git_commit"] or "unknown",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-bench-quick", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    args = parser.parse_args(argv)
    result = measure()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "quick.json", result)
    print(f"{result['command']}: {result['seconds']} s")
    return 0
