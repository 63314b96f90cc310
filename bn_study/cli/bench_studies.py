"""`make bench` (its third part): where a study's time goes, from real runs of its sweeps.

For each target (a study's sweep on a dataset: keras_blog, normalizers_cnn, depth and fig1, on mnist5k and on
Fashion-MNIST), a sample of its planned runs (and one more run of the first one's graph) is trained in this process, as a sweep trains them (one process, compiled
functions reused across runs of one graph), each for at most `--evaluations` of its evaluation intervals. Each run
records the seconds of each job (run.json timing.seconds: prepare, compile, steps, evaluation, probes, writing,
checkpoints); the jobs of the loop grow with the run's length, so they are scaled to its full length, and the whole
sweep is estimated from the sample's mean per run times its planned runs (compiling once per graph), plus one process
start (a child importing what a run needs) and the study's collect and render (timed on a copy of its committed
tables). Each sampled run is timed twice, as the committed runs were made (every evaluation whole, a checkpoint at
each) and as planned now, in one process (each pass a new sweep, the order alternating), so the two estimates compare. Written: both estimates, the fractions of
today's, and beside them the run time the committed runs recorded and their hosts.

    bn-study-bench-studies
    bn-study-bench-studies --targets fig1:mnist5k --runs 1 --evaluations 2 --out /tmp/b   # a smoke test
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bn_study import files
from bn_study.cli import studies as studies_cli
from bn_study.run import provenance
from bn_study.run.execute import PHASES, execute, forget_compiled, graph_key
from bn_study.studies import plan
from bn_study.studies.registry import Version, get
from bn_study.studies.report import VERSIONS
from bn_study.tables import collect

# (study, sweep): the sweeps the committed run time is spent in.
TARGETS = (("keras_blog", "keras_blog"), ("normalizers", "normalizers_cnn"), ("depth", "depth"), ("fig1", "fig1"))
PER_RUN = ("prepare", "compile")
COLUMNS = ("process start", "prepare", "compile", *PHASES, "collect and render")


def _target_name(sweep: str, version: Version) -> str:
    """The base version reads its experiment files' mnist, which is mnist5k without a network."""
    return f"{sweep}:{version.data or 'mnist5k'}"


def process_start(repeats: int = 2) -> float:
    """Seconds for a fresh interpreter to import what a run needs (TensorFlow included): what each sweep pays once."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import bn_study.run.execute"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sample(configs: list, runs: int) -> list:
    """`runs` of the planned configs, spread over the plan (its arms come in blocks), and another run of the first one's
    graph (another seed) where the plan has one: what a sweep pays to restart compiled functions."""
    step = max(1, len(configs) // runs)
    picked = configs[::step][:runs]
    first = graph_key(picked[0])
    again = next((c for c in configs if c not in picked and graph_key(c) == first), None)
    return [*picked, again] if again is not None else picked


def run_sample(configs: list, evaluations: int, folder: Path, as_committed: bool) -> list[dict]:
    """Each config trained for at most `evaluations` intervals, as a new sweep would (compiling each graph's first run);
    its job seconds, the loop's scaled to its full length. `as_committed`: as the committed runs were first made, every
    evaluation whole (trainer.eval_subset=0) and a checkpoint at each (checkpoint.every_seconds=0); otherwise as planned."""
    forget_compiled()
    rows = []
    for i, cfg in enumerate(configs):
        full = cfg.trainer.steps
        steps = min(full, evaluations * cfg.trainer.eval_every)
        trainer, checkpoint = replace(cfg.trainer, steps=steps), cfg.checkpoint
        if as_committed:
            trainer, checkpoint = replace(trainer, eval_subset=0), replace(checkpoint, every_seconds=0.0)
        record = execute(replace(cfg, trainer=trainer, checkpoint=checkpoint), folder / str(i))
        seconds = record["timing"]["seconds"]
        rows.append(
            {k: v if k in PER_RUN else v * full / steps for k, v in seconds.items()}
            | {"fresh": record["timing"]["compiled"]}
        )
    return rows


def estimate(configs: list, measured: list[dict]) -> dict:
    """The sweep's seconds per job (PHASES and PER_RUN) from its sampled runs' `measured` seconds."""
    per_run = {k: statistics.mean(r[k] for r in measured) for k in PHASES}
    return {k: v * len(configs) for k, v in per_run.items()} | {
        job: per_graph(measured, configs, job) for job in PER_RUN
    }


def per_graph(measured: list[dict], configs: list, job: str) -> float:
    """The sweep's seconds of a job a run pays in full only with a new graph (prepare, compile): a sweep builds and
    compiles once per graph and restarts the compiled functions for its other runs."""
    fresh = [r[job] for r in measured if r["fresh"]]
    restart = [
        r[job] for r in measured if not r["fresh"]
    ] or fresh  # no restart sampled: counted as fresh (an upper bound)
    graphs = len({graph_key(cfg) for cfg in configs})
    return graphs * statistics.mean(fresh) + (len(configs) - graphs) * statistics.mean(restart)


def collect_and_render(study: str, version: Version) -> float:
    """Seconds to collect and render the study from a copy of its committed tables."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        shutil.copytree(collect.RESULTS, results)
        start = time.perf_counter()
        _, planned = studies_cli.planned_runs(get(study), version, results)
        studies_cli.render(get(study), version, results, planned)
        return time.perf_counter() - start


def committed(study: str, sweep: str, version: Version) -> tuple[float | None, str]:
    """The run time the committed runs of this sweep recorded (sum of wall_seconds, hours), and their hosts' CPU and
    instruction-set level."""
    runs_csv = collect.RESULTS / f"{study}{version.suffix}" / "runs.csv"
    if not runs_csv.exists():
        return None, ""
    runs = pd.read_csv(runs_csv)
    selected = studies_cli.selections(get(study), version, collect.RESULTS)
    others = plan.unplanned(runs, plan.planned([sweep], version, tuple(selected)))[0]
    runs = runs.drop(others.index)
    if runs.empty:  # the committed runs are of another plan: rerun the study
        return None, ""
    hosts = ", ".join(sorted(set(runs["cpu"].astype(str) + " " + runs["isa_level"].astype(str))))
    return float(runs["wall_seconds"].sum()) / 3600, hosts


def measure(targets: list[tuple[str, str, Version]], runs: int, evaluations: int) -> pd.DataFrame:
    start_cost = process_start()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for study, sweep, version in targets:
            selected = studies_cli.selections(get(study), version, collect.RESULTS)
            configs = [cfg for _, cfg in plan.configs(sweep, version, tuple(selected))]
            name = _target_name(sweep, version)
            print(
                f"[{name}] {len(configs)} planned runs; timing {runs} of them, as committed and as planned", flush=True
            )
            picked, folder = sample(configs, runs), Path(tmp) / name.replace(":", "_")
            # the two protocols one after the other, which goes first alternating from sweep to sweep, so that a slow
            # moment of the host does not always fall on the same one
            timed = {}
            for as_committed in (True, False) if len(rows) % 2 == 0 else (False, True):
                timed[as_committed] = run_sample(picked, evaluations, folder / str(as_committed), as_committed)
            before, measured = estimate(configs, timed[True]), timed[False]
            row = {"target": name, "planned_runs": len(configs), "sampled_runs": len(measured)}
            row |= {"process start": start_cost, "collect and render": collect_and_render(study, version)}
            row |= estimate(configs, measured)
            row["estimated_hours"] = sum(row[c] for c in COLUMNS) / 3600
            fixed = start_cost + row["collect and render"]
            row["as_committed_hours"] = (fixed + sum(before[c] for c in (*PER_RUN, *PHASES))) / 3600
            row["committed_hours"], row["committed_hosts"] = committed(study, sweep, version)
            rows.append(row)
    return pd.DataFrame(rows)


def checkpoint_cost(steps: int = 3_000, every: int = 100, repeats: int = 3) -> dict:
    """Figure 1's MLP (the fig1 sweep's first run, at its selected rate) for `steps` steps evaluating every `every`, with
    checkpoints off and at every evaluation (the median of `repeats` runs each, interleaved so that a slow moment of the
    host hits both alike): the seconds one save takes, its share of that run, and the share it can take at the default
    interval, where a run saves at most once per checkpoint.every_seconds (a run this short never does)."""
    selected = studies_cli.selections(get("fig1"), Version(), collect.RESULTS)
    _, cfg = plan.configs("fig1", Version(), tuple(selected))[0]
    cfg = replace(cfg, trainer=replace(cfg.trainer, steps=steps, eval_every=every))
    settings = {"off": replace(cfg.checkpoint, enabled=False), "every": replace(cfg.checkpoint, every_seconds=0.0)}
    walls, saves = {k: [] for k in settings}, []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for name, checkpoint in settings.items():
                record = execute(replace(cfg, checkpoint=checkpoint), Path(tmp) / f"{i}-{name}")
                walls[name].append(record["wall_seconds"])
                if name == "every":
                    saves.append(record["timing"]["seconds"]["checkpoints"] / (steps // every + 1))
    save = statistics.median(saves)
    return {
        "save_seconds": save,
        "wall_off": statistics.median(walls["off"]),
        "wall_every_evaluation": statistics.median(walls["every"]),
        "share_every_evaluation": save * (steps // every + 1) / statistics.median(walls["every"]),
        "every_seconds": cfg.checkpoint.every_seconds,
        "share_at_default_at_most": save / cfg.checkpoint.every_seconds,
    }


def summarize(table: pd.DataFrame, facts: dict, checkpoints: dict) -> str:
    header = "| sweep | planned runs | h as committed | h now | now / as committed | " + " | ".join(COLUMNS) + " |"
    lines = [
        "# Where a study's time goes",
        "",
        f"Measured {facts['date']} on {facts['cpu']} {facts['isa_level']} ({facts['cores']} cores), oneDNN {facts['onednn']}, at "
        f"commit {facts['git_commit'][:7]}, by `bn-study-bench-studies`: {facts['runs']} runs per sweep and one more of the first "
        f"one's graph, each trained for at most {facts['evaluations']} of its evaluation intervals and its loop's jobs scaled to "
        "its full length, the whole sweep estimated from them (one process start, every planned run, compiling once per "
        "graph, the study's collect and render). Each sampled run is timed twice in this one process: as the committed "
        "runs were made (every evaluation on the whole splits, a checkpoint at each) and as planned now (trainer.eval_subset "
        "where a study sets it, a checkpoint at most once a minute), each as a new sweep (compiling each graph's first run), "
        "which goes first alternating from sweep to sweep.",
        "",
        "Each job's column: its share of the estimated wall time now.",
        "",
        header,
        "|" + "---|" * (5 + len(COLUMNS)),
    ]
    for _, r in table.iterrows():
        total = sum(r[c] for c in COLUMNS)
        shares = " | ".join(f"{r[c] / total:.1%}" for c in COLUMNS)
        ratio = r["estimated_hours"] / r["as_committed_hours"]
        lines.append(
            f"| {r['target']} | {r['planned_runs']} | {r['as_committed_hours']:.2f} | {r['estimated_hours']:.2f} | {ratio:.2f} | {shares} |"
        )
    lines += [
        "",
        "The run time the committed runs of each sweep recorded, and where they ran (results bitwise identical on one host, "
        "not across hosts, nor times):",
        "",
        "| sweep | committed h | committed on |",
        "|---|---|---|",
    ]
    for _, r in table.iterrows():
        committed_h = "n/a" if pd.isna(r["committed_hours"]) else f"{r['committed_hours']:.2f}"
        lines.append(f"| {r['target']} | {committed_h} | {r['committed_hosts'] or 'n/a'} |")
    c = checkpoints
    lines += [
        "",
        "## Checkpoints",
        "",
        f"Figure 1's MLP for 3,000 steps evaluating every 100 (median of {facts['checkpoint_repeats']} runs each, interleaved): "
        f"one save takes {1e3 * c['save_seconds']:.1f} ms. Saved at every evaluation, as the committed runs were, the timed saves are "
        f"{c['share_every_evaluation']:.1%} of the run, whose wall time was {c['wall_every_evaluation']:.2f} s against "
        f"{c['wall_off']:.2f} s without checkpoints ({c['wall_every_evaluation'] / c['wall_off'] - 1:+.1%}: the two measures "
        "disagree by what this machine's drift and the run's other work can hide; the bound below uses the timed saves). At the "
        f"default, a save at most once every {c['every_seconds']:g} s, they are at most "
        f"{math.ceil(c['share_at_default_at_most'] * 1e4) / 100:.2f}% of any run "
        "(one save per interval, rounded up; target: at most 5% of a run evaluating every 100 steps).",
    ]
    return "\n".join(lines) + "\n"


def _targets(spec: list[str] | None) -> list[tuple[str, str, Version]]:
    # the versions the report sets side by side: the base version and Fashion-MNIST
    everything = [(study, sweep, version) for study, sweep in TARGETS for version in VERSIONS]
    if not spec:
        return everything
    by_name = {_target_name(sweep, version): (study, sweep, version) for study, sweep, version in everything}
    unknown = [s for s in spec if s not in by_name]
    if unknown:
        print(f"bn-study-bench-studies: error: --targets {unknown[0]}: one of {', '.join(by_name)}", file=sys.stderr)
        raise SystemExit(2)
    return [by_name[s] for s in spec]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-bench-studies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", nargs="+", help="sweep:dataset pairs (default: all 8)")
    parser.add_argument("--runs", type=int, default=2, help="runs sampled per sweep (default 2)")
    parser.add_argument(
        "--evaluations", type=int, default=20, help="evaluation intervals each runs at most (default 20)"
    )
    parser.add_argument("--checkpoint-repeats", type=int, default=3, help="runs per checkpoint setting (default 3)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    args = parser.parse_args(argv)
    targets = _targets(args.targets)
    table = measure(targets, args.runs, args.evaluations)
    checkpoints = checkpoint_cost(repeats=args.checkpoint_repeats)
    info = provenance.provenance()
    facts = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": info["cpu"],
        "isa_level": info["isa_level"],
        "cores": info["cpu_count"],
        "onednn": "on" if info["onednn"] else "off",
        "git_commit": info["git_commit"],
        "runs": args.runs,
        "evaluations": args.evaluations,
        "checkpoint_repeats": args.checkpoint_repeats,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("studies.csv", lambda tmp: table.to_csv(tmp, index=False)),
        ("studies.md", lambda tmp: tmp.write_text(summarize(table, facts, checkpoints))),
    ):
        os.replace(files.staged(args.out / name, write), args.out / name)
    files.write_json_atomic(
        args.out / "studies.json",
        {"facts": facts, "targets": table.to_dict("records"), "checkpoints": checkpoints},
    )
    print(f"wrote {args.out / 'studies.md'}, studies.csv, studies.json")
    return 0
