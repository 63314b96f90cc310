"""The registered model builders (`BUILDERS`, found in models/builders/) and the one check of a config against its
builder and its dataset's spec (`check`), worked out without building a model or importing TensorFlow, so that a
sweep checks every job before the first one starts. A user's own builder (model._target_) is unknown to that
arithmetic: its model is built once and checked against the contract (models.contract) instead."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Optional

from bn_study.config import ConfigError, ModelConfig, Output, RunConfig
from bn_study.config.registry import Registry
from bn_study.data.datasets import Spec, n_val
from bn_study.models import builders
from bn_study.models.builder import Builder, require

BUILDERS: Registry[Builder] = Registry("model.name")
for _info in sorted(pkgutil.iter_modules(builders.__path__), key=lambda info: info.name):
    _entry = importlib.import_module(f"{builders.__name__}.{_info.name}").BUILDER
    BUILDERS.add(_entry.name, _entry)
# The values every builder but an option's owners must leave it at.
_DEFAULTS = ModelConfig()
_OWNERS = {
    option: [b.name for b in BUILDERS.values() if option in b.options]
    for b in BUILDERS.values()
    for option in b.options
}


def of(m: ModelConfig) -> Optional[Builder]:
    """The registered builder `m` names; None for a user's own (model._target_)."""
    if m._target_ is not None:
        return None
    require(
        m.name in BUILDERS,
        "model.name",
        m.name,
        f"a registered builder ({', '.join(BUILDERS)}), or any label with model._target_=pkg.module.build",
    )
    return BUILDERS[m.name]


def xla_on_cpu(m: ModelConfig) -> bool:
    builder = of(m)
    return builder.xla_on_cpu if builder else not m.conv


def check(run: RunConfig, spec: Spec) -> None:
    """Raise ConfigError (one line naming the key) if `run`'s builder refuses it or it cannot train on data shaped
    like `spec`."""
    m, data = run.model, run.data.name
    builder = of(m)
    if builder:
        for option, owners in _OWNERS.items():
            value, default = getattr(m, option), getattr(_DEFAULTS, option)
            if option not in builder.options and value != default:
                raise ConfigError(
                    f"model.{option}={value}: must be {_text(default)} unless model={' or '.join(owners)} "
                    f"(model={m.name} does not read it)"
                )
        builder.rules(run)
        builder.fits(run, spec)
    if m.output is Output.sigmoid and spec.n_classes != 2:
        raise ConfigError(
            f"model.output=sigmoid: needs a two-class dataset; this one has {spec.n_classes} classes (use model.output=softmax)"
        )
    n_train = spec.n_train - n_val(spec.n_train, run.data.val_fraction)
    if run.trainer.batch_size > n_train:
        raise ConfigError(
            f"trainer.batch_size={run.trainer.batch_size}: must be at most the training split's {n_train:,} examples (data={data})"
        )
    for key, batches in (
        ("trainer.precise_bn", run.trainer.precise_bn),
        ("probe.precise_batches", run.probe.precise_batches),
    ):
        if batches * run.trainer.batch_size > n_train:
            raise ConfigError(
                f"{key}={batches}: {batches} batches of trainer.batch_size={run.trainer.batch_size} need {batches * run.trainer.batch_size:,} "
                f"training examples; the training split has {n_train:,} (data={data}); use at most {n_train // run.trainer.batch_size}"
            )


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
