"""What makes a run the run it is (its identity, hashed into its run_id), and a config as a run recorded it, read
back with today's keys and as the tables' columns."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math

from bn_study.config.schema import RunConfig, to_dict

# Where a run is written and how it is watched, not what it computes: left out of its identity (run_id), so
# the same run logged elsewhere, or resumed from a checkpoint, is still the same run.
NOT_IDENTITY = ("paths", "logger", "checkpoint", "objective")


# The keys every run's identity held before the schema began to grow (some, like data.path, were added early on and
# are hashed by every run since): kept whatever their value. A key added since (model.norm, model.depth,
# trainer.precise_bn, callbacks, ...) is left out of a run's identity while it has its default, the value every run
# made before it existed had: so no run's id moves when the schema grows, and adding a key is its field in the schema
# and nothing else. The default of a key outside HASHED must therefore never change (tests/unit/test_identity.py
# freezes them): a new default would give new runs the id of old runs made at the old one.
HASHED = frozenset(
    {
        *(f"data.{k}" for k in ("name", "strict", "path", "standardize", "standardize_epsilon", "val_fraction")),
        *(
            f"model.{k}"
            for k in (
                "name",
                "conv",
                "kernel_size",
                "hidden",
                "bn",
                "activation",
                "dropout",
                "init_std",
                "kernel_init",
                "input_bn",
                "output_bn",
                "output",
                "output_init",
                "bn_renorm",
                "dropout_before_bn",
                "l2",
                "bn_momentum",
            )
        ),
        *(f"optimizer.{k}" for k in ("name", "lr", "momentum", "decay_every", "decay_rate")),
        *(
            f"trainer.{k}"
            for k in (
                "steps",
                "batch_size",
                "eval_every",
                "eval_batch_size",
                "progress_seconds",
                "partial_batch",
                "xla",
            )
        ),
        *(
            f"probe.{k}"
            for k in (
                "enabled",
                "variance_shift",
                "layer",
                "unit",
                "examples",
                "percentiles",
                "activations",
                "gradients",
                "ics",
                "landscape",
                "bn_modes",
                "batch",
                "landscape_steps",
            )
        ),
        "seed",
        "study",
        "quick",
        "tag",
    }
)
_ABSENT = object()
# Nodes whose keys are the user's own names (callbacks by name): one value, compared whole with its default.
_LEAVES = ("callbacks",)


def identity(run: RunConfig) -> dict:
    """What makes a run the run it is: the config without NOT_IDENTITY, nor keys added since HASHED at their
    default (config_id hashes this)."""
    return identity_of(to_dict(run))


def identity_of(config: dict) -> dict:
    """`identity` of a config as a run recorded it (run.json's `config`), with the keys the schema had then:
    what its run_id was computed from."""
    c = {k: copy.deepcopy(v) for k, v in config.items() if k not in NOT_IDENTITY}
    _drop_new_defaults(c, _defaults(), "")
    return c


@functools.lru_cache(maxsize=1)
def _defaults() -> dict:
    """The schema's defaults (read only): building them through OmegaConf costs ~10 ms, and collect checks every run."""
    return to_dict(RunConfig())


def _drop_new_defaults(node: dict, defaults: dict, prefix: str) -> None:
    for key in list(node):
        dotted, default = f"{prefix}{key}", defaults.get(key, _ABSENT)
        if isinstance(node[key], dict) and isinstance(default, dict) and dotted not in _LEAVES:
            _drop_new_defaults(node[key], default, f"{dotted}.")
        elif dotted not in HASHED and node[key] == default:
            del node[key]


def with_defaults(config: dict) -> dict:
    """A run's recorded config with every key of today's schema: a knob added after the run was made has its
    default, which is what the code that made the run did."""
    defaults = to_dict(RunConfig())
    merged = {
        k: ({**v, **config[k]} if isinstance(v, dict) else config[k]) if k in config else v for k, v in defaults.items()
    }
    return {**config, **merged}


def config_id(config: dict) -> str:
    """A short stable hash of a resolved config: the same config always gets the same id."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(canonical.encode()).hexdigest()[:12]


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value


def flatten_config(config: dict) -> dict:
    """A resolved config as runs.csv's columns: dotted keys, lists as JSON text."""
    out: dict = {}
    _flatten("", config, out)
    return out


def recorded(row: dict, key: str, defaults: dict):
    """A flat config row's value of `key`, or its default where the run predates the key (no column, or an empty cell of a
    table that merges older runs with newer ones): every run made before a key existed had its default (`HASHED`)."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return defaults.get(key)
    return value


def comparable(value):
    """A config value as a run record and runs.csv both give it back (None, a bool, a number as a float, or text), so the
    two compare: 1, 1.0 and '1' alike, True and 'True' alike, and a number never equal to a bool (1 is not True)."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or value in ("True", "False"):
        return value in (True, "True")
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
