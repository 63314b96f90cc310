"""Everything that can refuse a run before it starts, in one call: a sweep checks each of its jobs with it before
the first one runs."""

from __future__ import annotations

from omegaconf import DictConfig

from bn_study.config import RunConfig, validate
from bn_study.data import datasets
from bn_study.models import registry as builders
from bn_study.probes import registry as probes
from bn_study.run import trackers


def validated(cfg: DictConfig | RunConfig) -> RunConfig:
    """The typed config, checked for ranges (`config.validate`), against its dataset's, its builder's and its probes'
    registry entries, and for fit against its dataset's spec: without TensorFlow, for every job of a study's plan. A
    user's builder (model._target_) left with a registered builder's name is named after its function."""
    run = validate(cfg)
    if run.model._target_ is not None and run.model.name in builders.BUILDERS:
        # the model group's default label, not the user's builder: its runs carry the builder's own name
        run.model.name = run.model._target_.rsplit(".", 1)[1]
    datasets.check(run)
    builders.check(run, datasets.spec(run.data.name))
    probes.check(run)
    return run


def checked(cfg: DictConfig | RunConfig) -> RunConfig:
    """`validated`, and trackers and callbacks that can start (`trackers.check`: a callback is made once, which
    imports TensorFlow, as a user's builder does): all that can refuse a run before it starts."""
    run = validated(cfg)
    trackers.check(run)
    if run.model._target_ is not None:
        # imports TensorFlow: only for a builder the arithmetic cannot follow
        from bn_study.models import contract

        spec = datasets.spec(run.data.name)
        probes.fits_model(contract.build(run.model, spec.input_shape, spec.n_classes, run.seed), run.probe)
    return run
