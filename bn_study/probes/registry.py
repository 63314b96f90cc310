"""The registered probes (`PROBES`): per switch in ProbeConfig, the curves' splits it logs, the class that measures it
and what it needs of the model; and the one check of a config's probes against its builder (`check`). Imports no
TensorFlow: a study's plan reads the splits, and a sweep checks its jobs, without it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bn_study.config import BN, ConfigError, Norm, ProbeConfig, RunConfig
from bn_study.config.registry import Registry
from bn_study.models import registry as builders


@dataclass(frozen=True)
class Probe:
    # The curves' splits it logs, each with metric names that depend on the model.
    splits: tuple[str, ...]
    # `module:Class`, started by `Class.start(trainer, cfg, data)`; one instance measures every flag it serves.
    measured_by: str
    # It reads the feed-forward blocks' nonlinearities (`{block}_act`), which a recurrent cell has none of.
    blocks: bool = True
    # It logs only where the model has a BN layer.
    needs_bn: bool = False
    # It reads the test split, so before a run's last evaluation it measures trainer.eval_subset's subset of it (where
    # trainer.subset_splits cuts test).
    on_subset: bool = False


# Keyed by the ProbeConfig flag that switches each on; `enabled` (Figure 1's) first: run.json records its `where`.
PROBES: Registry[Probe] = Registry("probe")
PROBES.add("enabled", Probe(("probe", "probe_units"), "bn_study.probes.distributions:InputPercentiles"))
PROBES.add("variance_shift", Probe(("probe",), "bn_study.probes.distributions:VarianceShift", needs_bn=True))
for _flag, _split in (
    ("activations", "act"),
    ("gradients", "grad"),
    ("ics", "ics"),
    ("landscape", "landscape"),
):
    PROBES.add(_flag, Probe((_split,), "bn_study.probes.mechanisms:Mechanisms"))
PROBES.add("bn_modes", Probe(("bn_modes",), "bn_study.probes.mechanisms:Mechanisms", on_subset=True))
PROBES.add(
    "precise",
    Probe(("probe_precise", "probe_units_precise"), "bn_study.probes.distributions:InputPercentiles", needs_bn=True),
)


def _has_bn(run: RunConfig) -> bool:
    return run.model.bn is not BN.none or run.model.input_bn is not Norm.none


def switched_on(run: RunConfig) -> list[tuple[str, Probe]]:
    """The probes `run` measures, in registry order."""
    return [(flag, probe) for flag, probe in PROBES.items() if getattr(run.probe, flag)]


def splits(run: RunConfig) -> set[str]:
    """The probe splits a run of `run` logs."""
    return {s for _, probe in switched_on(run) if not probe.needs_bn or _has_bn(run) for s in probe.splits}


def subset_splits(run: RunConfig) -> set[str]:
    """The probe splits a run of `run` measures on trainer.eval_subset's subset before its last evaluation."""
    if not run.trainer.subset_of("test"):
        return set()
    return {s for _, probe in switched_on(run) if probe.on_subset for s in probe.splits}


def start(trainer, run: RunConfig, data) -> list:
    """One measuring object per class the switched-on probes name, in registry order."""
    classes = dict.fromkeys(probe.measured_by for _, probe in switched_on(run))
    started = []
    for path in classes:
        module, _, name = path.partition(":")
        started.append(getattr(importlib.import_module(module), name).start(trainer, run, data))
    return started


def check(run: RunConfig) -> None:
    """Each switched-on probe can read the model: refused, one line naming the flag, for a registered builder
    without feed-forward blocks; probe.layer and probe.unit name one of the blocks' nonlinearities."""
    builder = builders.of(run.model)
    if builder is None:
        return  # a user's builder: checked on the built model (`fits_model`)
    for flag, probe in switched_on(run):
        if probe.blocks and builder.acts is None:
            raise ConfigError(
                f"probe.{flag}=True: must be false for model={builder.name} (the probes read feed-forward blocks)"
            )
    if run.probe.enabled:
        fits(builder.acts(run.model), run.probe)


def fits_model(model, p: ProbeConfig) -> None:
    """probe.layer and probe.unit against a built model's nonlinearities (a user's builder)."""
    # imports TensorFlow: only for a user's builder, which the arithmetic cannot follow
    from bn_study.models.blocks import nonlinearities

    if p.enabled:
        fits([(act.name, act.output.shape[-1]) for act in nonlinearities(model)], p)


def fits(acts: list[tuple[str, int]], p: ProbeConfig) -> None:
    """`acts`: the hidden nonlinearities' (name, units), input to output."""
    if not -len(acts) <= p.layer < len(acts):
        raise ConfigError(
            f"probe.layer={p.layer}: the model has {len(acts)} hidden nonlinearities (use -{len(acts)}..{len(acts) - 1})"
        )
    name, units = acts[p.layer]
    if not 0 <= p.unit < units:
        raise ConfigError(f"probe.unit={p.unit}: {name} has {units} units (use 0..{units - 1})")
