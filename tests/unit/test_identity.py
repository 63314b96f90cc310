"""A run's id is a hash of its identity: these pins fail if a change to the schema or the identity rule would move the
id of runs already made (the values are what every version since the first runs computed for these configs)."""

import pytest

from bn_study.config import HASHED, config_id, identity, identity_of, to_dict
from tests.conftest import compose_run

PINNED = [
    ((), "0cbd0e75cdc2"),
    (("model=cnn",), "79553aa029f3"),
    (("model=lstm",), "87521fde26ee"),
    (("model=lstm", "model.permute=true"), "f65cb9bafb99"),
    (("model.bn=before", "model.norm=group"), "5f1e72a73307"),
    (("experiment=fig1",), "c26a7e180831"),
    (("model.depth=5", "trainer.precise_bn=2", "model.bn=before"), "454f5acb31f6"),
    (("+callbacks.stop._target_=keras.callbacks.EarlyStopping",), "7b8c6c9b48ff"),
]


@pytest.mark.parametrize("overrides, run_id", PINNED, ids=[" ".join(o) or "defaults" for o, _ in PINNED])
def test_the_run_id_of_a_config_does_not_move(overrides, run_id):
    assert config_id(identity(compose_run(*overrides))) == run_id


# The defaults of the keys added after the first runs, as those runs had them: changing one would give a new run the id
# of an old one made at the old default (add a key with the new behaviour instead).
ADDED_LATER = {
    ("model", "_target_"): None,
    ("model", "depth"): None,
    ("model", "norm"): "batch",
    ("model", "norm_groups"): 4,
    ("model", "permute"): False,
    ("model", "recurrent_gamma"): 0.1,
    ("trainer", "precise_bn"): 0,
    ("trainer", "eval_subset"): 0,
    ("trainer", "subset_splits"): ["test", "val"],
    ("probe", "precise_batches"): 0,
    ("callbacks",): {},
}


def test_the_defaults_of_keys_added_later_never_change():
    defaults = to_dict(compose_run())
    for path, value in ADDED_LATER.items():
        node = defaults
        for key in path:
            node = node[key]
        assert node == value, ".".join(path)


def test_a_key_added_to_the_schema_is_left_out_at_its_default_and_kept_off_it():
    config = to_dict(compose_run())
    assert "model.norm" not in HASHED and "norm" not in identity_of(config)["model"]
    config["model"]["norm"] = "layer"
    assert identity_of(config)["model"]["norm"] == "layer"
    # a hashed key stays whatever its value
    assert identity_of(to_dict(compose_run()))["model"]["conv"] == []
