"""`make bench`: the Figure 1 protocol trained three ways in one process, alternating, on the same batches.

    (a) tutorial   the seed tutorials' style: `model.fit` on arrays with default compile settings, one
                   call per evaluation interval, then `model.evaluate` and the probe's `predict`
    (b) bare       a tuned bare Keras loop, no evaluation or probes: (b1) every step in one XLA-compiled
                   `while_loop` over data in memory; (b2) `fit` with jit_compile and steps_per_execution.
                   b is the faster of the two
    (c0) the loop  `run.execute` evaluating only before and after the steps: bn-study's own training loop (chunks,
                   records, checkpoint), the part the loop target is about
    (c) bn-study   `run.execute`, test evaluation and percentile probe every 500 steps, files written
    (c+)           the same with every mechanism probe on too (bn_study.probes.mechanisms): what probing costs

Each way runs both arms (no BN, BN before the sigmoid; `--arms` picks) for `--steps` steps, `--rounds` times in turn, so
a change of machine speed hits every way alike; compilation is left out of the per-step figure. Also
measured: the step's arithmetic limit (its FLOPs at the machine's matmul rate, both for one large matmul
and for the step's own shapes), each way's peak resident memory, and the fixed cost per run of a real
`bn-study -m` sweep (everything in a run but its training loop: data, graph build, compile, first
evaluation, files). Writes results/bench/{bench.csv, bench.json, summary.md}.

    bn-study-bench
    bn-study-bench --steps 40 --rounds 1 --sweep-runs 2 --arms none --out /tmp/b   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from bn_study.config import BN, CONF_DIR, RunConfig
from bn_study.run import provenance
from bn_study.run.preflight import validated
from bn_study.tables import stats

ARMS = ("none", "before")
# The protocol: Figure 1's network, optimizer, batch and evaluation interval, on the bundled data.
PROTOCOL = ["experiment=fig1", "data=mnist5k"]
TARGETS = {"a_over_c": 5.0, "loop_over_b": 1.10, "probes_over_c": 1.25, "fixed_seconds": 1.5}


def compose_protocol(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validated(compose(config_name="config", overrides=[*PROTOCOL, *overrides]))


class PeakMemory:
    """The largest resident set size of this process while inside the `with`, sampled every 20 ms."""

    def __init__(self):
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, self.rss_mb())

    def __enter__(self):
        self.peak_mb = self.rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.rss_mb())


def _loss():
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def tutorial_style(cfg: RunConfig, data, steps: int) -> tuple[float, None]:
    """(a) seconds for `steps` steps the way the tutorials train: fit / evaluate / predict per interval."""
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import keras

    from bn_study.models import blocks, contract
    from bn_study.run.train import BatchOrder

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    model.compile(optimizer=keras.optimizers.SGD(cfg.optimizer.lr), loss=_loss(), metrics=["accuracy"])
    probe = keras.Model(model.inputs, blocks.nonlinearities(model)[-1].input)
    order, every, fixed = (
        BatchOrder(len(data.x_train), cfg.trainer.batch_size, cfg.seed),
        cfg.trainer.eval_every,
        data.x_test[: cfg.probe.examples],
    )

    def interval():
        idx = order.take(every)[0].ravel()
        model.fit(
            data.x_train[idx], data.y_train[idx], batch_size=cfg.trainer.batch_size, epochs=1, shuffle=False, verbose=0
        )
        model.evaluate(data.x_test, data.y_test, verbose=0)
        np.percentile(probe.predict(fixed, verbose=0)[:, cfg.probe.unit], list(cfg.probe.percentiles))

    interval()  # compiles fit, evaluate and predict
    start = time.perf_counter()
    for _ in range(steps // every):
        interval()
    return time.perf_counter() - start, None


def bare_loop(cfg: RunConfig, data, steps: int) -> tuple[float, None]:
    """(b1) seconds for `steps` SGD steps in one XLA-compiled while_loop over data in memory, nothing else."""
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import keras
    import tensorflow as tf

    from bn_study.models import contract
    from bn_study.run.train import BatchOrder

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    optimizer, loss_fn = keras.optimizers.SGD(cfg.optimizer.lr), _loss()
    optimizer.build(model.trainable_variables)
    x_all, y_all, weights = tf.constant(data.x_train), tf.constant(data.y_train), model.trainable_variables

    @tf.function(jit_compile=True)
    def train(idx, n):
        def step(i):
            x, y = tf.gather(x_all, idx[i]), tf.gather(y_all, idx[i])
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            optimizer.apply(tape.gradient(loss, weights), weights)
            return (i + 1,)

        return tf.while_loop(lambda i: i < n, step, (0,))

    idx = tf.constant(BatchOrder(len(data.x_train), cfg.trainer.batch_size, cfg.seed).take(steps)[0])
    train(idx, tf.constant(0))  # compiles
    start = time.perf_counter()
    train(idx, tf.constant(steps))[0].numpy()
    return time.perf_counter() - start, None


def tuned_fit(cfg: RunConfig, data, steps: int) -> tuple[float, None]:
    """(b2) seconds for `steps` steps of one `model.fit` call with XLA and steps_per_execution, nothing else."""
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import keras

    from bn_study.models import contract
    from bn_study.run.train import BatchOrder

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    every = cfg.trainer.eval_every
    model.compile(
        optimizer=keras.optimizers.SGD(cfg.optimizer.lr), loss=_loss(), jit_compile=True, steps_per_execution=every
    )
    order, batch = BatchOrder(len(data.x_train), cfg.trainer.batch_size, cfg.seed), cfg.trainer.batch_size
    idx = order.take(every)[0].ravel()
    model.fit(data.x_train[idx], data.y_train[idx], batch_size=batch, epochs=1, shuffle=False, verbose=0)  # compiles
    idx = order.take(steps)[0].ravel()
    start = time.perf_counter()
    model.fit(data.x_train[idx], data.y_train[idx], batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start, None


def harness(cfg: RunConfig, data, steps: int) -> tuple[float, float]:
    """(c) seconds bn-study's training loop took (evaluations, probes and file writes included), and the
    seconds before it (data, graph build, compile or restart, first evaluation)."""
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    from bn_study.run import execute as run

    with tempfile.TemporaryDirectory() as folder:
        record = run.execute(cfg, Path(folder))
    return record["timing"]["train_seconds"], record["timing"]["setup_seconds"]


def harness_loop(cfg: RunConfig, data, steps: int) -> tuple[float, float]:
    """(c0) as (c), evaluating and probing only before the first step and after the last."""
    return harness(replace(cfg, trainer=replace(cfg.trainer, eval_every=steps)), data, steps)


def harness_all_probes(cfg: RunConfig, data, steps: int) -> tuple[float, float]:
    """(c+) as (c), with every mechanism probe on as well (bn_study.probes.mechanisms) at each evaluation."""
    probe = replace(cfg.probe, activations=True, gradients=True, ics=True, landscape=True, bn_modes=True)
    return harness(replace(cfg, probe=probe), data, steps)


# Each way returns (seconds training, seconds of set-up before it where the way reports them, else None).
WAYS = {
    "a_tutorial": tutorial_style,
    "b1_bare_loop": bare_loop,
    "b2_tuned_fit": tuned_fit,
    "c0_loop": harness_loop,
    "c_bn_study": harness,
    "c_all_probes": harness_all_probes,
}


def matmul_rates(shapes: list[tuple[int, int]], batch: int, small: bool = False) -> dict:
    """GFLOP/s of (i) one 1024^3 matmul and (ii) the step's own matmuls: per dense layer (in -> out) the
    forward x @ W, the backward dy @ W^T and the weight gradient x^T @ dy, in a compiled loop."""
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import tensorflow as tf

    def best_rate(fn, flops, repeats=2 if small else 5):
        fn()  # compiles
        best = min(_timed(fn) for _ in range(repeats))
        return flops / best / 1e9

    big = tf.random.normal((1024, 1024))
    loops = 2 if small else 20  # small: a smoke test's sizes

    @tf.function(jit_compile=True)
    def large():
        def body(i, acc):
            return i + 1, acc + tf.reduce_sum(tf.matmul(big + tf.cast(i, tf.float32), big))

        return tf.while_loop(lambda i, acc: i < loops, body, (0, 0.0))[1]

    xs = [tf.random.normal((batch, n_in)) for n_in, _ in shapes]
    ws = [tf.random.normal((n_in, n_out)) for n_in, n_out in shapes]
    iters = 100 if small else 2000

    @tf.function(jit_compile=True)
    def step_shaped():
        def body(i, acc):
            for x, w in zip(xs, ws):
                x = x + tf.cast(i, tf.float32)  # a fresh input each iteration, so nothing is hoisted out of the loop
                dy = tf.matmul(x, w)
                acc += tf.reduce_sum(tf.matmul(dy, w, transpose_b=True)) + tf.reduce_sum(
                    tf.matmul(x, dy, transpose_a=True)
                )
            return i + 1, acc

        return tf.while_loop(lambda i, acc: i < iters, body, (0, 0.0))[1]

    step_flops = 6 * batch * sum(a * b for a, b in shapes)
    return {
        "large_gflops": best_rate(lambda: large().numpy(), 2 * 1024**3 * loops),
        "step_shaped_gflops": best_rate(lambda: step_shaped().numpy(), step_flops * iters),
        "step_flops": step_flops,
    }


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dense_shapes(cfg: RunConfig, data) -> list[tuple[int, int]]:
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    from bn_study.models import contract

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    return [tuple(layer.kernel.shape) for layer in model.layers if hasattr(layer, "kernel")]


def sweep_fixed_cost(n_runs: int, steps: int) -> dict:
    """A real `bn-study -m` sweep of `n_runs` short runs (both arms, several seeds) in a fresh process.

    A run's fixed cost is the time from the end of the previous run to its own end, minus its training
    loop: Hydra's job set-up, data, graph build, compilation (or restarting compiled functions), first
    evaluation and file writes. The first run's also holds the process start (Python, TensorFlow).
    """
    seeds = ",".join(str(s) for s in range(max(1, n_runs // len(ARMS))))
    with tempfile.TemporaryDirectory() as folder:
        cmd = [
            sys.executable,
            "-m",
            "bn_study",
            "-m",
            *PROTOCOL,
            f"seed={seeds}",
            f"trainer.steps={steps}",
            f"hydra.sweep.dir={folder}",
        ]
        launched = datetime.now(timezone.utc)
        done = subprocess.run(cmd, capture_output=True, text=True)
        process_seconds = (datetime.now(timezone.utc) - launched).total_seconds()
        if done.returncode:
            raise RuntimeError(f"the sweep failed: {done.stderr.strip().splitlines()[-1:]}")
        records = sorted(
            (json.loads(p.read_text()) for p in Path(folder).glob("*/run.json")), key=lambda r: r["finished_at"]
        )
    ends = [launched] + [datetime.fromisoformat(r["finished_at"]) for r in records]
    fixed = [(ends[k + 1] - ends[k]).total_seconds() - r["timing"]["train_seconds"] for k, r in enumerate(records)]
    compiled = [r["timing"]["compiled"] for r in records]
    later = [f for f, c in zip(fixed[1:], compiled[1:]) if not c]
    return {
        "runs": len(records),
        "process_seconds": round(process_seconds, 2),
        "fixed_seconds": [round(f, 3) for f in fixed],
        "compiled": compiled,
        "first_run": round(fixed[0], 3),
        "compiling": [round(f, 3) for f, c in zip(fixed[1:], compiled[1:]) if c],
        "median_restarted": round(statistics.median(later), 3) if later else None,
        "mean_after_first": round(statistics.mean(fixed[1:]), 3),
    }


def measure(
    steps: int, rounds: int, sweep_runs: int, arms: tuple[str, ...] = ARMS, log=print
) -> tuple[pd.DataFrame, dict]:
    # TensorFlow (and what imports it) only once something is measured: --help and the summary need none of it
    import tensorflow as tf

    from bn_study.data import datasets as data_lib

    cfgs = {
        bn: compose_protocol(f"model.bn={bn}", f"trainer.steps={steps}", f"trainer.eval_every={min(500, steps)}")
        for bn in arms
    }
    first = cfgs[arms[0]]
    data = data_lib.load(first.data)
    rows, peak = [], {}
    for r in range(1, rounds + 1):
        # Every other round runs the ways in reverse, so a drift in machine speed favours none of them.
        for way in list(WAYS)[:: 1 if r % 2 else -1]:
            for bn, cfg in cfgs.items():
                with PeakMemory() as mem:
                    seconds, setup = WAYS[way](cfg, data, steps)
                peak[way] = max(peak.get(way, 0.0), mem.peak_mb)
                rows.append(
                    {
                        "round": r,
                        "way": way,
                        "arm": bn,
                        "steps": steps,
                        "seconds": seconds,
                        "ms_per_step": 1e3 * seconds / steps,
                        "setup_seconds": setup,
                    }
                )
                log(f"[round {r}/{rounds}] {way:13s} bn={bn:6s} {1e3 * seconds / steps:7.3f} ms/step")
    shapes = dense_shapes(
        replace(first, model=replace(first.model, bn=BN.none)), data
    )  # the no-BN kernels: BN-before only drops biases
    rates = matmul_rates(shapes, first.trainer.batch_size, small=steps < 500)
    log(
        f"matmul: {rates['large_gflops']:.1f} GFLOP/s (1024^3), {rates['step_shaped_gflops']:.1f} GFLOP/s at the step's shapes"
    )
    fixed = sweep_fixed_cost(sweep_runs, first.trainer.eval_every)
    log(f"sweep of {fixed['runs']} runs: fixed cost per run {fixed['fixed_seconds']} s")
    facts = {
        "protocol": PROTOCOL + ["trainer.steps=" + str(steps)],
        "rounds": rounds,
        "peak_rss_mb": {k: round(v) for k, v in peak.items()},
        "matmul": rates,
        "dense_shapes": shapes,
        "sweep": fixed,
        "cpu": provenance.host(),
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
        "versions": provenance.versions(),
    }
    return pd.DataFrame(rows), facts


def summarize(table: pd.DataFrame, facts: dict) -> tuple[dict, str]:
    """Per way the median ms per model-step over rounds and arms; the ratios; the limit; the targets."""
    ms = table.groupby("way")["ms_per_step"].median()
    b_way = ms[["b1_bare_loop", "b2_tuned_fit"]].idxmin()
    c = ms["c_bn_study"]
    # Ratios are taken within each (round, arm), whose ways ran back to back, then their median.
    paired = table.pivot_table(index=["round", "arm"], columns="way", values="ms_per_step")
    m = facts["matmul"]
    limit_large, limit_shaped = (
        m["step_flops"] / m["large_gflops"] / 1e6,
        m["step_flops"] / m["step_shaped_gflops"] / 1e6,
    )
    sweep = facts["sweep"]
    fixed = sweep["mean_after_first"]
    pairs = {
        "a_over_c": paired["a_tutorial"] / paired["c_bn_study"],
        "loop_over_b": paired["c0_loop"] / paired[b_way],
        "c_over_loop": paired["c_bn_study"] / paired["c0_loop"],
        "c_over_b": paired["c_bn_study"] / paired[b_way],
        "probes_over_c": paired["c_all_probes"] / paired["c_bn_study"],
    }
    intervals = {k: stats.median_interval(v) for k, v in pairs.items()}
    ci = {k: (i.low, i.high) for k, i in intervals.items()}
    ratios = {
        **{k: v.median() for k, v in pairs.items()},
        "ci": ci,
        "c_over_limit_large": c / limit_large,
        "c_over_limit_step_shaped": c / limit_shaped,
        "b": b_way,
        "fixed_seconds": fixed,
    }

    def band(k: str) -> str:
        return f"{intervals[k].label()}: {ci[k][0]:.2f}-{ci[k][1]:.2f}"

    first = table[table["round"] == 1].groupby("way")["setup_seconds"].median()
    met = {
        "a_over_c": ratios["a_over_c"] >= TARGETS["a_over_c"],
        "loop_over_b": ratios["loop_over_b"] <= TARGETS["loop_over_b"],
        "probes_over_c": ratios["probes_over_c"] <= TARGETS["probes_over_c"],
        "fixed_seconds": fixed < TARGETS["fixed_seconds"],
    }
    yes = {True: "met", False: "**not met**"}
    label = {
        "a_tutorial": "(a) tutorial style: fit / evaluate / predict per interval",
        "b1_bare_loop": "(b1) bare loop: one XLA while_loop, no eval",
        "b2_tuned_fit": "(b2) `fit`, jit_compile + steps_per_execution, no eval",
        "c0_loop": "(c0) bn-study's loop: eval + probe only before and after",
        "c_bn_study": "(c) bn-study: eval + probe every 500 steps, files",
        "c_all_probes": "(c+) bn-study with every mechanism probe on too",
    }
    per_arm = table.groupby(["way", "arm"])["ms_per_step"].median().unstack()
    lines = [
        "# Benchmark: the Figure 1 protocol three ways",
        "",
        f"3x100 sigmoid MLP, SGD, batch 60, both arms, {int(table['steps'].iloc[0]):,} steps per measurement, {facts['rounds']} rounds alternating "
        f"in one process; medians over rounds. Measured {facts['date']} on {facts['cpu']} ({facts['cores']} cores), GPU: {'yes' if facts['gpu'] else 'no'}; "
        f"tensorflow {facts['versions'].get('tensorflow-cpu') or facts['versions'].get('tensorflow')}, keras {facts['versions'].get('keras')}.",
        "",
        "| way | ms per model-step (median) | no BN | BN | peak RSS (MB) |",
        "|---|---|---|---|---|",
        *[
            f"| {label[w]} | {ms[w]:.3f} | {' | '.join(f'{per_arm.loc[w, bn]:.3f}' if bn in per_arm else '-' for bn in ARMS)} | {facts['peak_rss_mb'][w]} |"
            for w in WAYS
        ],
        "",
        "Ratios are medians over rounds and arms of ratios taken within a round and arm (the ways ran back to back there), with a "
        "distribution-free confidence interval for that median (bn_study.tables.stats, its coverage shown): this machine's speed drifts by tens of "
        "percent within minutes, and the interval says how much that moves a ratio.",
        "",
        f"- a / c = **{ratios['a_over_c']:.1f}x** ({band('a_over_c')}; target >= {TARGETS['a_over_c']:g}x: {yes[met['a_over_c']]}).",
        f"- The loop: c0 / b = **{ratios['loop_over_b']:.3f}** with b = {b_way} ({band('loop_over_b')}; target <= {TARGETS['loop_over_b']:.2f}: "
        f"{yes[met['loop_over_b']]}).",
        f"- With the protocol's evaluation and probe every 500 steps, which b does not do: c / c0 = **{ratios['c_over_loop']:.3f}** "
        f"({band('c_over_loop')}), so c / b = **{ratios['c_over_b']:.3f}** ({band('c_over_b')}).",
        f"- Every probe on: c+ / c = **{ratios['probes_over_c']:.3f}** ({band('probes_over_c')}; target <= {TARGETS['probes_over_c']:.2f}: {yes[met['probes_over_c']]}). "
        f"Before training, the first run of each arm took {first['c_bn_study']:.2f} s (c) and {first['c_all_probes']:.2f} s (c+) to set up, "
        "the probes' compilation included; later runs of the same graph restart the compiled functions.",
        f"- Arithmetic limit: a step is {m['step_flops'] / 1e6:.1f} MFLOP (6 x batch x the dense kernels' sizes). At the machine's large-matmul "
        f"rate ({m['large_gflops']:.1f} GFLOP/s) that is {limit_large:.3f} ms, so c is {ratios['c_over_limit_large']:.1f}x the limit; at the rate the "
        f"step's own matmul shapes reach ({m['step_shaped_gflops']:.1f} GFLOP/s) it is {limit_shaped:.3f} ms, and c is {ratios['c_over_limit_step_shaped']:.1f}x that.",
        f"- Fixed cost per run in a `bn-study -m` sweep of {sweep['runs']} runs, both arms (from the end of one run to the end of the next, "
        f"minus its training loop): **{fixed:.2f} s** on average over the runs after the first (target < {TARGETS['fixed_seconds']:g} s: "
        f"{yes[met['fixed_seconds']]}). The first run also holds the process start (Python, TensorFlow imports), once per sweep: "
        f"{sweep['first_run']:.2f} s with its compilation; the other arm's first run, "
        f"compiling its graph, {', '.join(f'{x:.2f}' for x in sweep['compiling']) or '-'} s; every later run restarts compiled functions "
        f"(median {sweep['median_restarted'] if sweep['median_restarted'] is not None else float('nan'):.2f} s). The whole sweep process took {sweep['process_seconds']:.1f} s.",
        "",
        "Peak RSS is this one process's resident memory while each way ran (ways run in turn, so later ones also hold what earlier ones left).",
        "Raw numbers: bench.csv (every measurement), bench.json (machine, rates, sweep timings).",
        "",
    ]
    return {**ratios, "met": met}, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=5000,
        help="steps per arm and measurement, a multiple of 500 or below it (default 5000)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="times each way runs, alternating (default 5)")
    parser.add_argument("--sweep-runs", type=int, default=8, help="runs in the fixed-cost sweep (default 8)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    parser.add_argument(
        "--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which arms each way trains (default both)"
    )
    parser.add_argument(
        "--summarize-only",
        action="store_true",
        help="rewrite summary.md from the bench.csv and bench.json already in --out",
    )
    args = parser.parse_args(argv)
    if args.summarize_only:
        table, facts = pd.read_csv(args.out / "bench.csv"), json.loads((args.out / "bench.json").read_text())
        ratios, summary = summarize(table, facts)
        (args.out / "bench.json").write_text(json.dumps({**facts, "ratios": ratios}, indent=1, default=str) + "\n")
        (args.out / "summary.md").write_text(summary)
        print(summary)
        return 0
    if args.steps < 1 or (args.steps > 500 and args.steps % 500) or args.rounds < 1 or args.sweep_runs < 2:
        parser.error("--steps must be 1..500 or a multiple of 500, --rounds >= 1, --sweep-runs >= 2")
    table, facts = measure(
        args.steps, args.rounds, args.sweep_runs, tuple(args.arms), log=lambda line: print(line, flush=True)
    )
    ratios, summary = summarize(table, facts)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "bench.csv", index=False)
    (args.out / "bench.json").write_text(json.dumps({**facts, "ratios": ratios}, indent=1, default=str) + "\n")
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
