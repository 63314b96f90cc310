"""Everything that can refuse a run before it starts, in one call: a sweep checks each of its jobs with it before
the first one runs."""

from __future__ import annotations

from omegaconf import DictConfig

from bn_study.config import RunConfig, validate
from bn_study.data.datasets import SPECS
from bn_study.models import shapes
from bn_study.run import trackers


def checked(cfg: DictConfig | RunConfig) -> RunConfig:
    """The typed config, checked for ranges (`config.validate`), for fit against its dataset's spec, and for
    trackers and callbacks that can start (`trackers.check`: a callback is made once, which imports TensorFlow, as a
    user's builder does): all that can refuse a run before it starts."""
    run = validate(cfg)
    spec = SPECS[run.data.name]
    shapes.check(run, spec)
    trackers.check(run)
    if run.model._target_ is not None:
        # imports TensorFlow: only for a builder the arithmetic cannot follow
        from bn_study.models import builders as models

        shapes.check_probe(models.build(run.model, spec.input_shape, spec.n_classes, run.seed), run.probe)
    return run
