"""Figures, tables and summaries of the reproduced studies, from their collected tables.

    bn-study-figures fig1               # reads results/fig1/{runs.csv,curves.parquet}, writes beside them
    bn-study-figures keras_blog_quick   # the same figures for a study's quick=true runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..collect import RESULTS
from . import dropout, fig1, inception_table, input_bn, keras_blog, mechanisms, placement, sensitivity
from .common import StudyError

# Each study's figure builder; a builder reads only results/<study>/ (placement and mechanisms also their second half).
STUDIES = {
    "fig1": fig1.build,
    "keras_blog": keras_blog.build,
    "placement": placement.build,
    "lr_sensitivity": sensitivity.build_lr,
    "init_scale": sensitivity.build_init,
    "inception_table": inception_table.build,
    "dropout": dropout.build,
    "batch_size": sensitivity.build_batch,
    "input_bn": input_bn.build,
    "mechanisms": mechanisms.build,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bn-study-figures", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=sorted([*STUDIES, *(f"{s}_quick" for s in STUDIES)]))
    parser.add_argument("--results", type=Path, default=RESULTS, help="results root (default: results)")
    args = parser.parse_args(argv)
    study_dir = args.results / args.study
    try:
        written = STUDIES[args.study.removesuffix("_quick")](study_dir)
    except (FileNotFoundError, StudyError, fig1.StudyError) as err:
        print(f"bn-study-figures: error: {err} (run `make collect STUDY={args.study}` first?)", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
