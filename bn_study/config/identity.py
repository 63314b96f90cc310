"""What makes a run the run it is (its identity, hashed into its run_id), and a config as a run recorded it, read
back with today's keys and as the tables' columns."""

from __future__ import annotations

import copy
import hashlib
import json

from bn_study.config.schema import RunConfig, to_dict

# Where a run is written and how it is watched, not what it computes: left out of its identity (run_id), so
# the same run logged elsewhere, or resumed from a checkpoint, is still the same run.
NOT_IDENTITY = ("paths", "logger", "checkpoint")


# Keys added after runs were made, with the value every earlier run had: left out of a run's identity while
# they hold it, so the runs made before a key existed keep their ids.
ADDED_LATER = {
    "model._target_": None,
    "model.depth": None,
    "model.norm": "batch",
    "model.norm_groups": 4,
    "callbacks": {},
    "trainer.precise_bn": 0,
    "probe.precise_batches": 0,
    "model.permute": False,
    "model.recurrent_gamma": 0.1,
}


def identity(run: RunConfig) -> dict:
    """What makes a run the run it is: the config without NOT_IDENTITY, nor ADDED_LATER keys at their old
    value (config_id hashes this)."""
    return identity_of(to_dict(run))


def identity_of(config: dict) -> dict:
    """`identity` of a config as a run recorded it (run.json's `config`), with the keys the schema had then:
    what its run_id was computed from."""
    c = {k: copy.deepcopy(v) for k, v in config.items() if k not in NOT_IDENTITY}
    for dotted, old in ADDED_LATER.items():
        *parents, key = dotted.split(".")
        node = c
        for parent in parents:
            node = node.get(parent, {})
        if key in node and node[key] == old:
            del node[key]
    return c


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
