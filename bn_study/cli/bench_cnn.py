"""`make bench`, its CNN part: the Keras-blog CNN's training step in bn-study against the best bare
TensorFlow loop found, the step's arithmetic limit, and two runs trained in one compiled step.

What TensorFlow reads when it is imported (oneDNN on or off, thread counts) needs a process of its own, so
each setting runs in a child process; the parent runs the settings in turn, `--rounds` times (reversed every
other round), and each child measures all of its ways back to back on the same batches. Ratios between ways
are taken within one child; ratios between settings, between children of the same round.

Ways (both arms of the blog's grid at lr 0.001, relu: no BN, and BN before every activation and the output):
    bare_step     a tf.function of one training step (TensorFlow's kernels), called from Python per step
    bare_loop     one tf.function running every step in a tf.while_loop (TensorFlow's kernels)
    bare_xla      the same loop XLA-compiled
    nchw          bare_loop with the channels-first layout, where the CPU kernels take it (no-BN arm)
    bf16          bare_loop with Keras's mixed_bfloat16 policy (bfloat16 compute, float32 weights)
    bn_study      run.execute: the same loop, one evaluation at the end (val, test, batch-statistics probe)
    bn_study_blog run.execute as the keras_blog study runs it: an evaluation every 20 steps
    paired        one while_loop stepping both arms' models on the same batches (vs the two bare loops)
    paired_mlp    the same for Figure 1's MLP, XLA-compiled as bn-study runs it (vs its two loops)

    bn-study-bench-cnn                 # results/bench/cnn.{csv,json}, cnn.md
    bn-study-bench-cnn --steps 20 --rounds 1 --settings default --out /tmp/b   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bn_study.run import provenance
from bn_study.tables import stats

# Environment for TensorFlow's import in a child: {} leaves this machine's defaults (what bn-study uses).
SETTINGS = {
    "default": {},
    "onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "intra1": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "inter1": {"TF_NUM_INTEROP_THREADS": "1"},
}
PROTOCOL = ["experiment=keras_blog", "data=mnist5k", "model.activation=relu", "optimizer.lr=0.001"]
ARMS = {"none": "+arm=no_bn", "bn": "+arm=bn_blog"}
MLP = ["experiment=fig1", "data=mnist5k"]
TARGET = 1.2  # bn_study / the best bare loop
BUILD_PAIRED_AT = 1.3  # build multi-run steps if they cut a study's wall time by this much


# -- the child: every way of one setting --------------------------------------------------------------------
def _compose(overrides: list[str]):
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    from hydra import compose, initialize_config_dir

    from bn_study.config import CONF_DIR
    from bn_study.run.preflight import validated

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validated(compose(config_name="config", overrides=overrides))


def _model_and_optimizer(cfg, data):
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    from bn_study.models import contract
    from bn_study.run.train import make_optimizer

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    optimizer = make_optimizer(cfg.optimizer)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def _step_fn(model, optimizer, x_all, y_all):
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import keras
    import tensorflow as tf

    loss_fn, weights = keras.losses.SparseCategoricalCrossentropy(from_logits=True), model.trainable_variables

    def step(idx):
        x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, weights), weights)

    return step


def _loop(steps_of, xla: bool):
    """A compiled while_loop that applies every function in `steps_of` to each row of the index block."""
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import tensorflow as tf

    @tf.function(jit_compile=xla)
    def run(idx, n):
        def body(i):
            for step in steps_of:
                step(idx[i])
            return (i + 1,)

        return tf.while_loop(lambda i: i < n, body, (0,))

    return run


# Times each MLP way runs in a round (the paired comparison), alternating.
MLP_REPEATS = 5


def _timed_loop(cfgs, data, steps: int, xla: bool, layout: str = "channels_last", policy: str = "float32") -> float:
    """Seconds for `steps` steps of the models of `cfgs` (one, or several stepped together) in one loop, built in
    `layout` under the dtype `policy`."""
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import keras
    import tensorflow as tf

    from bn_study.run.train import BatchOrder

    keras.config.set_image_data_format(layout)
    keras.config.set_dtype_policy(policy)
    try:
        if layout == "channels_first":
            data = replace(data, x_train=data.x_train.transpose(0, 3, 1, 2).copy())
        x_all, y_all = tf.constant(data.x_train), tf.constant(data.y_train)
        steps_of = [_step_fn(*_model_and_optimizer(cfg, data), x_all, y_all) for cfg in cfgs]
        run = _loop(steps_of, xla)
        idx = tf.constant(BatchOrder(len(data.x_train), cfgs[0].trainer.batch_size, cfgs[0].seed).take(steps)[0])
        run(idx, tf.constant(1))[0].numpy()  # compiles
        start = time.perf_counter()
        run(idx, tf.constant(steps))[0].numpy()
        return time.perf_counter() - start
    finally:
        keras.config.set_image_data_format("channels_last")
        keras.config.set_dtype_policy("float32")


def _timed_steps(cfg, data, steps: int) -> float:
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import tensorflow as tf

    from bn_study.run.train import BatchOrder

    model, optimizer = _model_and_optimizer(cfg, data)
    step = tf.function(_step_fn(model, optimizer, tf.constant(data.x_train), tf.constant(data.y_train)))
    idx = BatchOrder(len(data.x_train), cfg.trainer.batch_size, cfg.seed).take(steps)[0]
    step(tf.constant(idx[0]))  # compiles
    start = time.perf_counter()
    for row in idx:
        step(tf.constant(row))
    model.trainable_variables[0].numpy()  # waits for the last step (on a GPU, calls return before the work is done)
    return time.perf_counter() - start


def _timed_bn_study(cfg, steps: int, eval_every: int) -> float:
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    from bn_study.run import execute as run

    cfg = replace(cfg, trainer=replace(cfg.trainer, steps=steps, eval_every=eval_every))
    with tempfile.TemporaryDirectory() as folder:
        return run.execute(cfg, Path(folder))["timing"]["train_seconds"]


def conv_flops(cfg, data) -> tuple[int, list[dict]]:
    """A training step's FLOPs (forward, and backward as twice the forward: input and weight gradients),
    and each conv layer's shape, from the built model."""
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    from bn_study.models import contract

    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    batch, forward, convs = cfg.trainer.batch_size, 0, []
    for layer in model.layers:
        if hasattr(layer, "kernel") and len(layer.kernel.shape) == 4:
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            forward += 2 * batch * h * w * kh * kw * c_in * c_out
            convs.append({"input": list(layer.input.shape[1:]), "kernel": [kh, kw, c_in, c_out]})
        elif hasattr(layer, "kernel"):
            forward += 2 * batch * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3 * forward, convs


def conv_rates(convs: list[dict], batch: int, small: bool) -> dict:
    """GFLOP/s TensorFlow's convolutions reach here: (i) a large 3x3 convolution, (ii) the step's own conv
    shapes, forward and both gradients, in a compiled (non-XLA) loop."""
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import tensorflow as tf

    def rate(shapes, b, iters):
        xs = [tf.random.normal([b, *c["input"]]) for c in shapes]
        ws = [tf.random.normal(c["kernel"]) for c in shapes]
        flops = 0
        for c in shapes:
            h, w = c["input"][0] - c["kernel"][0] + 1, c["input"][1] - c["kernel"][1] + 1
            flops += 3 * 2 * b * h * w * c["kernel"][0] * c["kernel"][1] * c["kernel"][2] * c["kernel"][3]

        @tf.function
        def loop():
            def body(i, acc):
                for x, w in zip(xs, ws):
                    x = x + tf.cast(i, tf.float32)
                    with tf.GradientTape(persistent=True) as tape:
                        tape.watch([x, w])
                        y = tf.nn.conv2d(x, w, 1, "VALID")
                    dx, dw = tape.gradient(y, [x, w])
                    acc += tf.reduce_sum(y) + tf.reduce_sum(dx) + tf.reduce_sum(dw)
                return i + 1, acc

            return tf.while_loop(lambda i, acc: i < iters, body, (0, 0.0))[1]

        loop().numpy()
        best = min(_seconds(lambda: loop().numpy()) for _ in range(2 if small else 3))
        return flops * iters / best / 1e9

    return {
        "large_gflops": rate([{"input": [56, 56, 64], "kernel": [3, 3, 64, 64]}], 16, 2 if small else 10),
        "step_shaped_gflops": rate(convs, batch, 5 if small else 100),
    }


def _reason(err: Exception) -> str:
    """The line of a TensorFlow error that says why (its first line is often just 'Graph execution error')."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return next(
        (line for line in lines if "NHWC" in line or "format" in line), lines[0] if lines else type(err).__name__
    )[:200]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child(setting: str, steps: int, rounds_tag: int) -> list[dict]:
    """Every way of this process's setting: rows of (way, arm, ms per model-step)."""
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    from bn_study.data import datasets as data_lib

    cfgs = {arm: _compose([*PROTOCOL, flag, f"trainer.steps={steps}"]) for arm, flag in ARMS.items()}
    data = data_lib.load(cfgs["none"].data)
    rows = []

    def add(way, arm, seconds, models=1):
        rows.append(
            {
                "setting": setting,
                "round": rounds_tag,
                "way": way,
                "arm": arm,
                "steps": steps,
                "ms_per_step": 1e3 * seconds / steps / models,
            }
        )

    for arm, cfg in cfgs.items():
        add("bare_step", arm, _timed_steps(cfg, data, steps))
        add("bare_loop", arm, _timed_loop([cfg], data, steps, xla=False))
        if setting == "default":
            add("bare_xla", arm, _timed_loop([cfg], data, min(steps, 40), xla=True) * steps / min(steps, 40))
            try:  # the no-BN arm only: BN's axis would need moving too, and the layout is about the convolutions
                if arm == "none":
                    add("nchw", arm, _timed_loop([cfg], data, steps, xla=False, layout="channels_first"))
            except Exception as err:  # the CPU kernels refuse NCHW without oneDNN: recorded, not fatal
                rows.append(
                    {
                        "setting": setting,
                        "round": rounds_tag,
                        "way": "nchw",
                        "arm": arm,
                        "steps": steps,
                        "ms_per_step": float("nan"),
                        "error": _reason(err),
                    }
                )
            add("bf16", arm, _timed_loop([cfg], data, steps, xla=False, policy="mixed_bfloat16"))
            add("bn_study", arm, _timed_bn_study(cfg, steps, eval_every=steps))
            add("bn_study_blog", arm, _timed_bn_study(cfg, steps, eval_every=20))
    if setting == "default":
        add("paired", "both", _timed_loop(list(cfgs.values()), data, steps, xla=False), models=2)
        mlp = [_compose([*MLP, f"model.bn={bn}", f"trainer.steps={10 * steps}"]) for bn in ("none", "before")]
        mlp_data = data_lib.load(mlp[0].data)
        ways = [("mlp_loop", "none", mlp[:1]), ("mlp_loop", "before", mlp[1:]), ("paired_mlp", "both", mlp)]
        # An MLP measurement lasts about a second, short enough for this machine's drift to favour whichever way ran
        # in a fast moment (one round measured the singles at twice another's time, the paired loop unchanged): the
        # ways repeat, in turn reversed, and the summary takes each way's median in the round.
        for repeat in range(MLP_REPEATS):
            for way, arm, together in ways if repeat % 2 == 0 else ways[::-1]:
                add(way, arm, _timed_loop(together, mlp_data, 10 * steps, xla=True) / 10, models=len(together))
    return rows


# -- the parent: settings in turn, then the summary ----------------------------------------------------------
def measure(steps: int, rounds: int, settings: list[str], log=print) -> tuple[pd.DataFrame, dict]:
    rows = []
    for r in range(1, rounds + 1):
        for setting in settings[:: 1 if r % 2 else -1]:
            env = {**os.environ, **SETTINGS[setting], "TF_CPP_MIN_LOG_LEVEL": "2"}
            if setting == "default":
                env = {
                    k: v
                    for k, v in env.items()
                    if k
                    not in (
                        "TF_NUM_INTRAOP_THREADS",
                        "TF_NUM_INTEROP_THREADS",
                        "OMP_NUM_THREADS",
                        "TF_ENABLE_ONEDNN_OPTS",
                    )
                }
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bn_study.cli.bench_cnn",
                    "--child",
                    setting,
                    "--steps",
                    str(steps),
                    "--round",
                    str(r),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise RuntimeError(f"setting {setting}: {done.stderr.strip().splitlines()[-1:]}")
            got = json.loads(done.stdout.strip().splitlines()[-1])
            rows += got
            log(
                f"[round {r}/{rounds}] {setting:10s} "
                + " ".join(
                    f"{x['way']}/{x['arm']}={x['ms_per_step']:.2f}"
                    for x in got
                    if x["way"] in ("bare_loop", "bn_study")
                )
            )
    # TensorFlow (and what imports it) only in a child, once its setting is in the environment it reads at import
    import tensorflow as tf

    from bn_study.data import datasets as data_lib

    cfg = _compose([*PROTOCOL, ARMS["none"]])
    data = data_lib.load(cfg.data)
    flops, convs = conv_flops(cfg, data)
    rates = conv_rates(convs, cfg.trainer.batch_size, small=steps < 100)
    flags = sorted(
        {
            f
            for line in open("/proc/cpuinfo")
            if line.startswith("flags")
            for f in line.split()
            if f.startswith(("avx", "amx", "fma"))
        }
    )
    facts = {
        "protocol": PROTOCOL,
        "steps": steps,
        "rounds": rounds,
        "settings": {s: SETTINGS[s] for s in settings},
        "step_flops": flops,
        "convs": convs,
        "conv": rates,
        "cpu": provenance.host(),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
    }
    log(
        f"conv: {rates['large_gflops']:.1f} GFLOP/s (large 3x3), {rates['step_shaped_gflops']:.1f} GFLOP/s at the step's shapes"
    )
    return pd.DataFrame(rows), facts


def _paired_ratio(table: pd.DataFrame, way: str, single: str) -> stats.Interval:
    """Per round: the two arms' single-run step times summed over twice the paired per-model time."""
    t = table[table["setting"] == "default"].pivot_table(
        index="round", columns=["way", "arm"], values="ms_per_step", aggfunc="median"
    )
    alone = t[single].sum(axis=1)
    return stats.median_interval(alone / (2 * t[(way, "both")]))


def summarize(table: pd.DataFrame, facts: dict) -> tuple[dict, str]:
    default = table[table["setting"] == "default"]
    per = default.pivot_table(index=["round", "arm"], columns="way", values="ms_per_step")
    bare = ["bare_step", "bare_loop", "bare_xla"]  # nchw, measured on one arm only, is reported beside them
    best_bare = per[bare].median().idxmin()
    # The best bare loop of any setting, against the default's, within each round.
    by_setting = table[table["way"] == "bare_loop"].pivot_table(
        index=["round", "arm"], columns="setting", values="ms_per_step"
    )
    setting_vs_default = {
        s: stats.median_interval(by_setting[s] / by_setting["default"]) for s in by_setting if s != "default"
    }
    c = stats.median_interval(per["bn_study"] / per[best_bare])
    blog = stats.median_interval(per["bn_study_blog"] / per["bn_study"])
    mixed = stats.median_interval(per["bf16"] / per["bare_loop"]) if "bf16" in per else None
    ms = per.median()
    limit = {k: facts["step_flops"] / facts["conv"][k] / 1e6 for k in ("large_gflops", "step_shaped_gflops")}
    paired, paired_mlp = _paired_ratio(table, "paired", "bare_loop"), _paired_ratio(table, "paired_mlp", "mlp_loop")
    errors = table.get("error", pd.Series(dtype=str)).dropna().unique()
    bf16 = any(f in facts["cpu_flags"] for f in ("avx512_bf16", "amx_bf16"))
    label = {
        "bare_step": "one tf.function call per step",
        "bare_loop": "every step in one tf.function while_loop",
        "bare_xla": "the same loop, XLA-compiled",
        "nchw": "bare loop, channels-first layout",
        "bf16": "bare loop, mixed bfloat16",
        "bn_study": "bn-study, one evaluation at the end",
        "bn_study_blog": "bn-study, an evaluation every 20 steps (the keras_blog study)",
    }
    lines = [
        "# Benchmark: the Keras-blog CNN's training step",
        "",
        f"Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, relu, Adam, batch 32, both arms (no BN; BN before every activation and the output); "
        f"{facts['steps']:,} steps per measurement, {facts['rounds']} rounds; each setting in a process of its own, its ways back to back. "
        f"Measured {facts['date']} on {facts['cpu']} ({facts['cores']} cores; {', '.join(facts['cpu_flags'])}), GPU: {'yes' if facts['gpu'] else 'no'}.",
        "",
        "| way (default setting) | ms per step (median) | no BN | BN |",
        "|---|---|---|---|",
        *[
            f"| {label[w]} | {ms[w]:.2f} | "
            + " | ".join(f"{per[w].xs(arm, level='arm').median():.2f}" for arm in ARMS)
            + " |"
            for w in label
            if w in per and per[w].notna().any()
        ],
        "",
        f"- bn-study / the best bare loop ({label[best_bare]}) = **{c.median:.3f}** ({c.label()}: {c.low:.2f}-{c.high:.2f}; target <= {TARGET}: "
        f"{'met' if c.median <= TARGET else '**not met**'}).",
        f"- Evaluating every 20 steps, as the keras_blog study does, costs {blog.median:.2f}x the step alone ({blog.label()}: {blog.low:.2f}-{blog.high:.2f}).",
        f"- Arithmetic limit: a step is {facts['step_flops'] / 1e6:.1f} MFLOP (the convolutions and dense layers, forward and twice that backward). "
        f"TensorFlow's convolutions reach {facts['conv']['large_gflops']:.1f} GFLOP/s on a large 3x3 convolution here and "
        f"{facts['conv']['step_shaped_gflops']:.1f} GFLOP/s at the step's own shapes: a limit of {limit['large_gflops']:.2f} ms and "
        f"{limit['step_shaped_gflops']:.2f} ms per step, so bn-study's step is {ms['bn_study'] / limit['large_gflops']:.1f}x and "
        f"{ms['bn_study'] / limit['step_shaped_gflops']:.1f}x them.",
        "- Settings, the bare loop's step against the default's (same round): "
        + "; ".join(
            f"{s} {i.median:.2f}x ({i.label()}: {i.low:.2f}-{i.high:.2f})" for s, i in setting_vs_default.items()
        )
        + ". The default (oneDNN on, TensorFlow's "
        "thread pools over all cores) is what bn-study runs with; a setting below 1 would be worth taking.",
        *([f"- Channels-first: {errors[0]}"] if len(errors) else []),
        f"- XLA's CPU convolutions: {ms['bare_xla'] / ms['bare_loop']:.1f}x the TensorFlow-kernel loop, which is why bn-study leaves XLA off for convolutions on a CPU.",
        *(
            [
                f"- Mixed precision (Keras's mixed_bfloat16: bfloat16 compute, float32 weights): {mixed.median:.2f}x the float32 loop's step "
                f"({mixed.label()}: {mixed.low:.2f}-{mixed.high:.2f}); this CPU {'has' if bf16 else 'has no'} bfloat16 instructions (avx512_bf16 or amx_bf16). "
                "It would change every number a run records, so bn-study does not turn it on."
            ]
            if mixed is not None
            else []
        ),
        f"- Two runs in one compiled step (the paired arms on the same batches), against the two run one after the other: CNN "
        f"**{paired.median:.2f}x** faster ({paired.label()}: {paired.low:.2f}-{paired.high:.2f}); Figure 1's MLP (XLA) **{paired_mlp.median:.2f}x** "
        f"({paired_mlp.label()}: {paired_mlp.low:.2f}-{paired_mlp.high:.2f}). The training step is at most the whole of a study's wall time, so a study "
        f"would gain at most this; worth building at {BUILD_PAIRED_AT}x or more: "
        f"{'yes' if max(paired.median, paired_mlp.median) >= BUILD_PAIRED_AT else 'no, not built'}.",
        "",
        "Raw numbers: cnn.csv (every measurement), cnn.json (machine, shapes, rates).",
        "",
    ]
    return {
        "bn_study_over_bare": c.median,
        "best_bare": best_bare,
        "paired_cnn": paired.median,
        "paired_mlp": paired_mlp.median,
    }, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-bench-cnn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=400,
        help="CNN steps per measurement (default 400; the MLP's paired loop runs 10x as many)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="times each setting runs, alternating (default 3)")
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        default=list(SETTINGS),
        help="which settings (default all; 'default' is required)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (default results/bench)")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.round)))
        return 0
    if args.steps < 2 or args.rounds < 1 or "default" not in args.settings:
        parser.error("--steps >= 2, --rounds >= 1, and --settings must include default")
    table, facts = measure(args.steps, args.rounds, args.settings, log=lambda line: print(line, flush=True))
    ratios, summary = summarize(table, facts)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "cnn.csv", index=False)
    (args.out / "cnn.json").write_text(json.dumps({**facts, "ratios": ratios}, indent=1, default=str) + "\n")
    (args.out / "cnn.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
