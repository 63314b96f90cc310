"""Figures, tables and summaries of the reproduced studies, from their collected tables.

    bn-study-figures fig1          # reads results/fig1/{runs,curves}.csv, writes the figure beside them
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..collect import RESULTS
from . import fig1

STUDIES = {"fig1": fig1.build}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bn-study-figures", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--results", type=Path, default=RESULTS, help="results root (default: results)")
    args = parser.parse_args(argv)
    study_dir = args.results / args.study
    try:
        written = STUDIES[args.study](study_dir)
    except (FileNotFoundError, fig1.StudyError) as err:
        print(f"bn-study-figures: error: {err} (run `make collect STUDY={args.study}` first?)", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
