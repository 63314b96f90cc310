"""One run: a validated config in, a run folder (run.json + curves.csv) out.

Usable without Hydra (tests, notebooks): `execute(preflight.checked(cfg), folder)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import keras

from bn_study import interrupts
from bn_study.config import BN, ConfigError, Normalizer, RunConfig, config_id, identity, to_dict
from bn_study.data import datasets as data_lib
from bn_study.models import contract
from bn_study.models import registry as builders
from bn_study.probes import precise_bn
from bn_study.probes import registry as probes
from bn_study.run import checkpoints, provenance, records
from bn_study.run.trackers import Trackers, epoch_logs
from bn_study.run.train import MAX_CHUNK, BatchOrder, Head, Trainer, make_optimizer, set_determinism, use_xla

log = logging.getLogger(__name__)
# Every run of a sweep compiles fresh functions for its own model; TensorFlow's "retracing" warning about that is noise.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
# TensorFlow's checkpoint saver logs a line per save through absl at INFO ("Sharding callback duration"): noise too.
logging.getLogger("absl").setLevel(logging.WARNING)


class _Progress:
    """At most one line every `every` seconds, plus the first and last evaluation."""

    def __init__(self, label: str, total: int, every: float):
        self.label, self.total, self.every = label, total, every
        self._t0 = time.perf_counter()
        self._last = -math.inf

    def __call__(self, step: int, test: dict, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.every:
            return
        self._last = now
        elapsed = now - self._t0
        eta = f"{elapsed / step * (self.total - step):.0f} s" if step else "?"
        log.info(
            "[%s] step %d/%d (%3.0f%%)  test acc %.4f  loss %.4f  | %.0f s elapsed, ETA %s",
            self.label,
            step,
            self.total,
            100 * step / self.total,
            test["accuracy"],
            test["loss"],
            elapsed,
            eta,
        )


def _label(cfg: RunConfig) -> str:
    m = cfg.model
    norm = f" norm={m.norm.value}" if m.bn is not BN.none and m.norm is not Normalizer.batch else ""
    return (
        f"{cfg.study} {m.name} bn={m.bn.value}{norm} act={m.activation.value} lr={cfg.optimizer.lr:g} seed={cfg.seed}"
    )


def finished(cfg: RunConfig, folder: Path) -> dict | None:
    """The record of this very config if `folder` already holds it finished (done or diverged) and its
    curves verify, so a rerun can skip it; None if it is to be (re)run.

    A folder holding a run of another config, finished or interrupted, is refused rather than overwritten.
    """
    old = _earlier(folder, config_id(identity(cfg)))
    if old is None or old.get("status") not in ("done", "diverged"):
        return None  # nothing there (or a torn run.json), or interrupted or failed: redo, or resume from its checkpoint
    try:
        records.verified_curves(folder, old)
    except records.Unverified as err:
        log.warning("WARNING %s: redoing this run: %s", folder, err)
        return None
    return old


def _earlier(folder: Path, run_id: str) -> dict | None:
    """The run.json `folder` holds (None: none, or torn); ConfigError if it is the run of another config."""
    try:
        old = records.read_run(folder)
    except (OSError, ValueError):
        return None
    if old.get("run_id") != run_id:
        raise ConfigError(
            f"{folder}: holds {'a finished' if old.get('status') in ('done', 'diverged') else 'an interrupted'} run of another config "
            f"(run {old.get('run_id')}, {old.get('status')}); choose another output folder, or move that one away"
        )
    return old


@dataclass
class Compiled:
    """A model with its compiled training, evaluation and probe functions."""

    trainer: Trainer
    probes: list
    fresh: bool  # compiled for this run, not restarted
    precise: precise_bn.Recomputer | None = None  # the current run's trainer.precise_bn, set by `prepare`
    # Precise BN's recomputers by batch count, kept like the rest: arms that differ only in trainer.precise_bn (bn,
    # bn_precise) share one graph, so an LSTM's second arm does not compile its training loop again.
    recomputers: dict[int, precise_bn.Recomputer] = field(default_factory=dict)

    def recomputer(self, cfg: RunConfig, data: data_lib.Dataset) -> precise_bn.Recomputer | None:
        batches = cfg.trainer.precise_bn
        if batches and batches not in self.recomputers:
            self.recomputers[batches] = precise_bn.Recomputer(
                self.trainer.model, data.x_train, cfg.trainer.batch_size, batches
            )
        return self.recomputers.get(batches)


# Compiling the training loop is most of a short run's fixed cost (about 1 s of XLA here), and a sweep
# runs the same network again and again with other seeds, rates or inits. So the compiled functions of the
# last few architectures are kept, and a run whose graph matches one restarts it from its own fresh
# weights (`Trainer.restart`) instead of compiling again; a test checks that this gives the same curve.
_COMPILED: OrderedDict[str, Compiled] = OrderedDict()
KEEP_COMPILED = 8


def forget_compiled() -> None:
    """Drop the kept compiled functions: the next run of every graph compiles, as a new sweep's first one does."""
    _COMPILED.clear()


def graph_key(cfg: RunConfig) -> str:
    """What the compiled functions depend on: everything but the seed, the initial weights' distribution,
    the learning rate (a variable, unless a schedule bakes it in), the run length, the labels and trainer.precise_bn
    (its recomputer is kept beside them, `Compiled.recomputer`)."""
    c = identity(cfg)
    for key in ("init_std", "kernel_init"):
        c["model"].pop(key)
    if not cfg.optimizer.decay_every:
        c["optimizer"].pop("lr")
    t = c.pop("trainer")
    c["trainer"] = {
        "batch_size": t["batch_size"],
        "eval_batch_size": t["eval_batch_size"],
        "eval_subset": cfg.trainer.eval_subset,
        "subset_splits": sorted(cfg.trainer.subset_splits),
        "chunk": _chunk(cfg),
        "xla": use_xla(cfg.trainer.xla, cfg.model),
        "deterministic": cfg.trainer.deterministic,  # kernels are chosen as functions are traced
    }
    for key in ("seed", "study", "quick", "tag"):
        c.pop(key, None)
    return json.dumps(c, sort_keys=True)


def _chunk(cfg: RunConfig) -> int:
    return min(MAX_CHUNK, cfg.trainer.eval_every, cfg.trainer.steps)


def prepare(cfg: RunConfig) -> tuple[data_lib.Dataset, Compiled]:
    """Everything that can refuse the config before any file is written (data, model, probes), compiled
    or restarted from the compiled functions of an earlier run of the same graph."""
    data = data_lib.load(cfg.data)
    set_determinism(cfg.trainer.deterministic)
    builders.check(cfg, data.spec)  # what was loaded, which may be a fallback: a batch larger than its training split
    probes.check(cfg)
    key = graph_key(cfg)
    compiled = _COMPILED.pop(key, None)
    if compiled is None:
        keras.backend.clear_session()  # a sweep builds many models in one process: drop the previous one's graphs
    keras.utils.set_random_seed(cfg.seed)
    model = contract.build(cfg.model, data.input_shape, data.n_classes, cfg.seed)
    if cfg.model._target_ is not None:
        probes.fits_model(model, cfg.probe)
    if compiled is None:
        compiled = _compile(cfg, data, model)
    else:
        compiled.trainer.restart(model, make_optimizer(cfg.optimizer))
        compiled.fresh = False
    compiled.precise = compiled.recomputer(cfg, data)
    _COMPILED[key] = compiled
    while len(_COMPILED) > KEEP_COMPILED:
        _COMPILED.popitem(last=False)
    return data, compiled


def _compile(cfg: RunConfig, data: data_lib.Dataset, model: keras.Model) -> Compiled:
    t = cfg.trainer
    trainer = Trainer(
        model,
        make_optimizer(cfg.optimizer),
        data.x_train,
        data.y_train,
        {"test": (data.x_test, data.y_test), "val": (data.x_val, data.y_val)},
        batch_size=t.batch_size,
        chunk=_chunk(cfg),
        eval_batch_size=t.eval_batch_size,
        xla=use_xla(t.xla, cfg.model),
        head=Head(cfg.model.output),
        eval_subsets={split: t.subset_of(split) for split in records.EVALUATED},
    )
    return Compiled(trainer, probes.start(trainer, cfg, data), fresh=True)


def execute(cfg: RunConfig, folder: Path, overrides: list[str] | None = None, runtime: dict | None = None) -> dict:
    """Train and evaluate one config into `folder`; return the final run.json record."""
    t_start = time.perf_counter()
    run_id = config_id(identity(cfg))
    earlier = _earlier(folder, run_id)
    data, compiled = prepare(cfg)
    config = to_dict(cfg)
    resume = _resumable(cfg, folder, earlier, compiled.trainer)
    if resume is None:
        checkpoints.remove(folder)  # the curve starts again at step 0: no older checkpoint may be resumed over it
    writer = records.RunWriter(
        folder,
        {
            "run_id": run_id,
            "study": cfg.study,
            "overrides": list(overrides or []),
            "command": provenance.python_command(),
            "config": config,
            "data": data.describe(),
            "probe": compiled.probes[0].where if cfg.probe.enabled else None,
            "runtime": {**(runtime or {}), **provenance.provenance(), **provenance.gpus(), **provenance.determinism()},
            "steps_planned": cfg.trainer.steps,
        },
        resume_at=resume.step if resume else None,
    )
    t, trackers = cfg.trainer, None
    # A resumed run's wall time includes what its earlier processes spent up to the checkpoint it goes on from.
    before = resume.wall_seconds if resume else 0.0

    def wall() -> float:
        return before + time.perf_counter() - t_start

    try:
        trackers = Trackers(
            cfg,
            folder,
            compiled.trainer.model,
            compiled.trainer.optimizer,
            epochs=-(-t.steps // t.eval_every),
            steps_per_epoch=t.eval_every,
            mlflow_run_id=writer.record.get("mlflow_run_id") if resume else None,
        )
        if trackers.mlflow_run_id:
            writer.update(mlflow_run_id=trackers.mlflow_run_id)  # a resumed run goes on in the same MLflow run
        return _train(cfg, compiled, writer, trackers, t_start, wall, folder, resume, run_id)
    except BaseException as err:  # KeyboardInterrupt too: the folder must not claim to be running
        if writer.record["status"] == "running":
            error = "KeyboardInterrupt" if interrupts.caused(err) else f"{type(err).__name__}: {err}"
            writer.close("failed", error=error, wall_seconds=round(wall(), 3))
        if trackers is not None:
            trackers.end("failed")
        raise


def _resumable(cfg: RunConfig, folder: Path, earlier: dict | None, trainer: Trainer) -> checkpoints.Resume | None:
    """The checkpoint to go on from, restored into `trainer`: one left in `folder` by an unfinished run of this very
    config (`earlier`: its run.json), whole, and reached by the curve in the folder (`checkpoints.resume`)."""
    if not cfg.checkpoint.enabled or earlier is None or earlier.get("status") not in ("running", "failed"):
        return None
    return checkpoints.resume(
        folder,
        earlier["run_id"],
        trainer,
        lambda found: records.curve_reaches(folder, found.step, found.measured, cfg.trainer.eval_every),
    )


def _train(
    cfg,
    compiled: Compiled,
    writer,
    trackers: Trackers,
    t_start,
    wall,
    folder: Path,
    resume: checkpoints.Resume | None,
    run_id: str,
) -> dict:
    t = cfg.trainer
    prepared = time.perf_counter() - t_start
    t_compile = time.perf_counter()
    # A restarted graph too: its TensorFlow-kernel functions (an LSTM's, a CNN's) spend seconds at their first call in a
    # new run, which the steps would otherwise be charged with.
    compiled.trainer.warm_up()
    compile_seconds = time.perf_counter() - t_compile
    saver = (
        checkpoints.Saver(folder, compiled.trainer, run_id, kept=resume, every_seconds=cfg.checkpoint.every_seconds)
        if cfg.checkpoint.enabled
        else None
    )
    loop = _Loop(
        cfg,
        compiled,
        writer,
        trackers,
        saver,
        _Progress(_label(cfg), t.steps, t.progress_seconds),
        wall=wall,
    )
    loop.start(resume)
    setup_seconds = time.perf_counter() - t_start
    t_train = time.perf_counter()
    trackers.begin()
    while loop.step < t.steps and loop.diverged_at is None and loop.stopped_at is None:
        loop.interval(min(loop.step + t.eval_every - loop.step % t.eval_every, t.steps))
    train_seconds = time.perf_counter() - t_train
    timing = {
        "xla": compiled.trainer.xla,
        "compiled": compiled.fresh,
        "setup_seconds": round(setup_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "ms_per_step": round(1e3 * train_seconds / max(1, loop.step - (resume.step if resume else 0)), 4),
        # Where the run's time went (bn-study-bench-studies reads it): data, model and files before the loop; the
        # first call of the compiled functions; then, over the loop, the four jobs of an evaluation and the steps.
        "seconds": {
            "prepare": round(prepared, 3),
            "compile": round(compile_seconds, 3),
            **{phase: round(spent, 3) for phase, spent in loop.seconds.items()},
        },
    }
    return loop.finish(folder, timing)


# The loop's jobs, timed apart in run.json's timing.seconds.
PHASES = ("steps", "evaluation", "probes", "writing", "checkpoints")


class _Loop:
    """One run's training once it is set up: evaluate (every split and probe, logged and checkpointed), train one
    interval between evaluations, finish (the run's record closed as done or diverged)."""

    def __init__(
        self, cfg: RunConfig, compiled: Compiled, writer, trackers: Trackers, saver, progress: _Progress, wall
    ):
        self.cfg, self.compiled, self.writer, self.wall = cfg, compiled, writer, wall
        self.trackers, self.saver, self.progress = trackers, saver, progress
        self.trainer = compiled.trainer
        self.seconds = dict.fromkeys(PHASES, 0.0)
        t = cfg.trainer
        self.order = BatchOrder(self.trainer.n_train, t.batch_size, cfg.seed, partial=t.partial_batch)
        self.step, self.measured = 0, None
        self.diverged_at, self.stopped_at, self.why = None, None, ""

    def evaluate(self, step: int) -> dict | None:
        """Every evaluated split (test, val) and probe at `step`, logged (whole at the run's last step, before it on
        trainer.eval_subset's subset where one is set); returns the splits' numbers, or None (nothing
        logged) where the network's outputs are not finite: a network that computes NaN has diverged, whatever its
        training loss said."""
        trainer = self.trainer
        whole = step == self.cfg.trainer.steps  # trainer.eval_subset leaves the last evaluation whole: claims read it
        with self._timed("evaluation"):
            if self.compiled.precise:
                precise_bn.assign(trainer.model, self.compiled.precise.statistics())
            measured = {split: trainer.evaluate(split, whole) for split in trainer.splits}
        if not all(math.isfinite(v) for values in measured.values() for v in values.values()):
            return None
        with self._timed("probes"):
            probed = [probe.measure(whole) for probe in self.compiled.probes]
        with self._timed("writing"):
            for values_by_split in (measured, *probed):
                self._log(step, values_by_split)
            self.writer.flush()
        if self.saver and self.saver.due():
            with self._timed("checkpoints"):
                self.saver.save(step, measured, round(self.wall(), 3))
        return measured

    def _log(self, step: int, values_by_split: dict[str, dict[str, float]]) -> None:
        """To the curves, and to TensorBoard and MLflow on the same step axis."""
        for split, values in values_by_split.items():
            self.writer.log(step, split, values)
        self.trackers.log(step, values_by_split)

    @contextlib.contextmanager
    def _timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def start(self, resume: checkpoints.Resume | None) -> None:
        """From the checkpoint `resume` names, or from step 0 with its evaluation."""
        if resume:
            self.order.skip(resume.step)
            self.step, self.measured = resume.step, resume.measured
            log.info("[%s] resumed from its checkpoint at step %d", _label(self.cfg), self.step)
        else:
            self.measured = self.evaluate(0)
            if self.measured is None:
                self.diverged_at, self.why = 0, "non-finite outputs at its first evaluation"
        if self.measured is not None:
            self.progress(self.step, self.measured["test"], force=True)

    def interval(self, target: int) -> None:
        """Train up to step `target` (the next evaluation), log the interval's training means, then evaluate; a
        callback (one 'epoch' to it) may stop the run there."""
        t, trainer = self.cfg.trainer, self.trainer
        epoch = (target - 1) // t.eval_every
        self.trackers.epoch_begin(epoch)
        seen, examples = {"loss": 0.0, "accuracy": 0.0}, 0
        while self.step < target and self.diverged_at is None:
            for block in self.order.take(min(trainer.chunk, target - self.step)):
                with self._timed("steps"):
                    chunk = trainer.train(block)
                for k in seen:
                    seen[k] += chunk[k] * chunk["examples"]
                examples += chunk["examples"]
                self.step += chunk["steps"]
                if chunk["diverged"]:
                    self.diverged_at, self.why = self.step, "non-finite training loss"
                    break
        train = {k: v / examples for k, v in seen.items()}
        with self._timed("writing"):
            self._log(self.step, {"train": train})
        if self.diverged_at is not None:
            return
        self.measured = self.evaluate(self.step)
        if self.measured is None:
            self.diverged_at, self.why = self.step, "non-finite outputs at its evaluation"
            return
        self.progress(self.step, self.measured["test"], force=self.step == t.steps)
        if self.trackers.epoch_end(epoch, epoch_logs(self.step, train, self.measured)) and self.step < t.steps:
            self.stopped_at = self.step
            log.info("[%s] stopped by a callback at step %d", _label(self.cfg), self.step)
            self.progress(self.step, self.measured["test"], force=True)

    def finish(self, folder: Path, timing: dict) -> dict:
        """Close the run's record: done with its last evaluation, or diverged with NaN where it stopped."""
        splits, writer = self.trainer.splits, self.writer
        if self.diverged_at is not None:
            # The network is non-finite from here on: record NaN where the run stopped, nothing after it.
            self._log(self.step, {split: {"loss": math.nan, "accuracy": math.nan} for split in splits})
            writer.flush()
            log.info("[%s] diverged: %s at step %d", _label(self.cfg), self.why, self.diverged_at)
            status, final = "diverged", {f"{split}_{k}": math.nan for split in splits for k in ("loss", "accuracy")}
        else:
            status = "done"
            final = {f"{split}_{k}": v for split, values in self.measured.items() for k, v in values.items()}
        writer.close(
            status,
            final=final,
            steps=self.step,
            diverged_at_step=self.diverged_at,
            stopped_at_step=self.stopped_at,
            wall_seconds=round(self.wall(), 3),
            timing=timing,
        )
        if self.saver and not self.cfg.checkpoint.keep:
            checkpoints.remove(folder)
        # after the run's own files are whole
        self.trackers.end(status, epoch_logs(self.step, {}, self.measured) if status == "done" else None)
        return writer.record
