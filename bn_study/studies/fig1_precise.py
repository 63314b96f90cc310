"""Figure 1(b, c) on precise statistics: the fig1 network once more, its BN arm's sigmoid input read both on BN's moving
averages (as fig1 reads it) and on statistics recomputed over 20 fixed training batches at each evaluation (probe.precise).
Judged: is BN's input stable once its inference statistics do not lag? Writes fig1_precise.png / .pdf, fig1_precise.csv
and summary.md.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bn_study.claims import Claim, Side, UnitDrift
from bn_study.studies import fig1, fig1_pilot
from bn_study.studies.common import Tables
from bn_study.studies.registry import Study

NAME = "fig1_precise"
PRECISE = "probe_units_precise"
WITH_PRECISE = "with BN, on recomputed statistics"


def _claim(name: str, part: str) -> Claim:
    drift = UnitDrift(name=name, settled=fig1.SETTLED)
    return Claim(
        f"{NAME}.stable_{name}",
        fig1.SOURCE,
        f"Figure 1(b, c): without BN the distribution drifts in {part}; with BN it is much more stable, read with BN's "
        "statistics recomputed at each evaluation rather than its moving averages.",
        Side(WITH_PRECISE, {"model.bn": "before"}, UnitDrift(split=PRECISE, name=name, settled=fig1.SETTLED)),
        fig1.WITHOUT_BN,
        drift,
        "lower",
        margin=0.05,
    )


CLAIMS = (
    _claim("median", "mean"),
    _claim("spread", "variance"),
    Claim(
        f"{NAME}.steadier_than_moving",
        "Wu & Johnson (2021), 'Rethinking Batch in BatchNorm'",
        "BN's moving averages lag the weights: the BN network's sigmoid input drifts less in spread on recomputed statistics "
        "than on its moving averages.",
        Side(WITH_PRECISE, {"model.bn": "before"}, UnitDrift(split=PRECISE, name="spread", settled=fig1.SETTLED)),
        Side("with BN, on moving averages", {"model.bn": "before"}),
        UnitDrift(name="spread", settled=fig1.SETTLED),
        "lower",
        margin=0.05,
    ),
)


def build(study_dir: Path, out: Path) -> list[Path]:
    tables = Tables.load(study_dir, out)
    table = fig1.figure_table(tables, bn_split=PRECISE)
    table.to_csv(out / f"{NAME}.csv", index=False)
    seed, unit = int(table["probe_seed"].iloc[0]), int(table["probe_unit"].iloc[0])
    caption = (
        fig1.takeaway(table)
        + " "
        + fig1.caption_for(tables, seed, unit).replace(
            "BN in inference mode",
            "panel (c) with BN's statistics recomputed over 20 fixed training batches at each evaluation (precise BN)",
        )
    )
    paths = fig1.draw(table, caption, out / NAME)
    steps = int(tables.runs["steps"].max())
    summary = "\n".join(
        [
            f"# {STUDY.title}",
            "",
            f"{caption} {steps:,} steps per run, evaluated every {int(tables.runs['trainer.eval_every'].iloc[0]):,} steps; "
            f"{tables.seeds_note()}. The runs are fig1's configuration with the precise probe on, so they train exactly as "
            "fig1's do; only what is read at each evaluation differs.",
            "",
            fig1.PAPER_PANELS,
            "",
            *tables.claims_section(),
            f"Figure: {NAME}.png / .pdf; the numbers plotted: {NAME}.csv; the runs: runs.csv, curves.parquet (splits "
            "probe_units and probe_units_precise).",
            "",
        ]
    )
    (out / "summary.md").write_text(summary)
    return [*paths, out / f"{NAME}.csv", out / "summary.md"]


STUDY = Study(
    NAME,
    "Figure 1(b, c) on precise statistics: does BN's input jitter because its moving averages lag?",
    "fig1 with the BN arm's sigmoid input also read on recomputed statistics, 10 or 20 seeds: panel (c) without the lag",
    sweeps=(NAME,),
    claims=CLAIMS,
    render=build,
    selected=functools.partial(fig1_pilot.BEST.rate, study=NAME),
    order=3,
)
