import json

import keras
import numpy as np
import pytest

from bn_study.data import datasets as data_lib
from bn_study.models import blocks, contract
from bn_study.models.registry import BUILDERS
from bn_study.probes.distributions import InputPercentiles, VarianceShift
from tests.conftest import TINY, cli, compose_run

# The builders made of feed-forward blocks (the LSTM's cell holds its own: tests/keras/test_lstm.py).
FEEDFORWARD = sorted(name for name, builder in BUILDERS.items() if builder.acts is not None)


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers if layer.name.startswith("dense1_")]


@pytest.mark.parametrize(
    "bn, expected",
    [
        ("none", ["Dense", "Activation"]),
        ("before", ["Dense", "BatchNormalization", "Activation"]),
        ("after", ["Dense", "Activation", "BatchNormalization"]),
    ],
)
def test_bn_placement_builds_the_layer_order_it_claims(bn, expected):
    cfg = compose_run(f"model.bn={bn}")
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)
    assert _kinds(model) == expected
    # The layer feeding BN has no bias: BN's beta would make it redundant.
    assert model.get_layer("dense1_linear").use_bias is (bn != "before")
    assert len(blocks.nonlinearities(model)) == 3


def test_dropout_follows_the_block():
    cfg = compose_run("model.bn=before", "model.dropout=0.3")
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)
    assert _kinds(model) == ["Dense", "BatchNormalization", "Activation", "Dropout"]


def test_cnn_is_the_keras_blog_network():
    cfg = compose_run("model=cnn", "model.bn=before")
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)
    kinds = [
        type(layer).__name__
        for layer in model.layers
        if type(layer).__name__ in ("Conv2D", "MaxPooling2D", "Flatten", "Dense")
    ]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]
    assert [layer.filters for layer in model.layers if type(layer).__name__ == "Conv2D"] == [32, 64, 64]
    assert model.output_shape == (None, 10)


def test_paired_arms_start_from_the_same_kernels():
    kernels = {}
    for bn in ("none", "before", "after"):
        cfg = compose_run(f"model.bn={bn}", "model.init_std=0.01", "seed=3")
        model = contract.build(cfg.model, (28, 28, 1), 10, seed=3)
        kernels[bn] = [
            model.get_layer(n).kernel.numpy() for n in ("dense1_linear", "dense2_linear", "dense3_linear", "logits")
        ]
    for bn in ("before", "after"):
        for a, b in zip(kernels["none"], kernels[bn]):
            np.testing.assert_array_equal(a, b)
    assert abs(kernels["none"][0].std() - 0.01) < 0.001
    other = contract.build(compose_run("seed=4", "model.init_std=0.01").model, (28, 28, 1), 10, seed=4)
    assert not np.array_equal(other.get_layer("dense1_linear").kernel.numpy(), kernels["none"][0])


def test_dropout_before_bn_input_bn_renorm_and_l2():
    cfg = compose_run(
        "model.bn=before",
        "model.dropout=0.3",
        "model.dropout_before_bn=true",
        "model.input_bn=feature",
        "model.bn_renorm=true",
        "model.l2=0.01",
    )
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)
    assert _kinds(model) == ["Dense", "Dropout", "BatchNormalization", "Activation"]
    assert type(model.get_layer("input_bn")).__name__ == "BatchNormalization"
    assert all(layer.renorm for layer in model.layers if type(layer).__name__ == "BatchNormalization")
    assert model.get_layer("dense2_linear").kernel_regularizer is not None


def test_variance_shift_is_one_when_bn_scales_by_the_inputs_true_variance():
    cfg = compose_run("model.bn=before", "model.hidden=[8]")
    model = contract.build(cfg.model, (4,), 3, seed=0)
    x = np.random.default_rng(0).normal(size=(500, 4)).astype("float32")
    bn = model.get_layer("dense1_bn")
    pre = x @ model.get_layer("dense1_linear").kernel.numpy()
    bn.moving_variance.assign(np.full(8, pre.var(axis=0).mean(), dtype="float32"))
    shift = VarianceShift(model, x).metrics()
    assert shift.keys() == {"var_shift_dense1_bn"}
    assert abs(shift["var_shift_dense1_bn"] - 1.0) < 1e-4
    bn.moving_variance.assign(bn.moving_variance.numpy() * 3)
    assert abs(VarianceShift(model, x).metrics()["var_shift_dense1_bn"] - 3.0) < 1e-3
    assert (
        VarianceShift(contract.build(compose_run().model, (4,), 3, seed=0), x).metrics() == {}
    )  # no BN layer: nothing to measure


@pytest.mark.parametrize("kind, n_stats", [("feature", 784), ("scalar", 1)])
def test_input_bn_per_feature_or_scalar(kind, n_stats):
    """Per feature: a mean and variance per pixel; scalar: one for all pixels. In training mode each
    normalises its batch to mean 0 and variance 1 over what it averages."""
    model = contract.build(compose_run(f"model.input_bn={kind}").model, (28, 28, 1), 10, seed=0)
    bn = model.get_layer("input_bn")
    assert bn.moving_mean.shape == (n_stats,)
    x = np.random.default_rng(0).uniform(0, 1, size=(64, 28, 28, 1)).astype("float32") * np.linspace(1, 3, 784).reshape(
        1, 28, 28, 1
    )
    out = keras.Model(model.inputs, model.get_layer("input_bn_unflat").output)(x, training=True).numpy()
    assert out.shape == x.shape
    flat = out.reshape(64, -1)
    if kind == "feature":
        np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(flat.var(axis=0), 1, atol=0.02)
    else:
        assert (
            abs(flat.mean()) < 1e-4 and abs(flat.var() - 1) < 0.01 and flat.var(axis=0).std() > 0.1
        )  # one scale: pixels keep their differences


def test_keras_blog_output_bn_and_the_circles_sigmoid_head():
    model = contract.build(
        compose_run("model=cnn", "model.bn=before", "model.output_bn=true").model, (28, 28, 1), 10, seed=0
    )
    assert (
        type(model.get_layer("logits")).__name__ == "BatchNormalization"
        and not model.get_layer("logits_linear").use_bias
    )
    assert model.output_shape == (None, 10)
    head = compose_run(
        "data=circles", "model.output=sigmoid", "model.output_init=glorot_uniform", "model.kernel_init=he_uniform"
    ).model
    model = contract.build(head, (2,), 2, seed=0)
    assert (
        model.output_shape == (None, 1)
        and type(model.get_layer("logits").kernel_initializer).__name__ == "GlorotUniform"
    )
    assert type(model.get_layer("dense1_linear").kernel_initializer).__name__ == "HeUniform"


@pytest.mark.parametrize("name", FEEDFORWARD)
@pytest.mark.parametrize("bn", ["none", "before", "after"])
@pytest.mark.parametrize(
    "dropout",
    [[], ["model.dropout=0.2"], ["model.dropout=0.2", "model.dropout_before_bn=true"]],
    ids=["none", "after", "before_bn"],
)
def test_every_registered_builder_keeps_the_contract(name, bn, dropout):
    """Probes find their layers and BN sits where model.bn says, for every builder, with dropout anywhere."""
    if bn == "none" and len(dropout) == 2:
        pytest.skip("dropout_before_bn needs a BN layer")
    cfg = compose_run(f"model={name}", f"model.bn={bn}", *dropout)
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)  # contract.check runs inside, and would raise
    acts = blocks.nonlinearities(model)
    assert len(acts) == len(cfg.model.conv) + len(cfg.model.hidden)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == (0 if bn == "none" else len(acts))
    x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype("float32")
    assert InputPercentiles(model, cfg.probe, x).measure()  # Figure 1's probe finds its unit
    if bn != "none":
        assert VarianceShift(model, x).metrics().keys() == {f"var_shift_{layer.name}" for layer in bns}


def test_the_contract_refuses_bn_on_the_wrong_side():
    """A model built for model.bn=after is not a model.bn=before one: the check compares the graph, not names alone."""
    after = contract.build(compose_run("model.bn=after").model, (28, 28, 1), 10, seed=0)
    with pytest.raises(contract.ContractError, match="model.bn=before: 'dense1_bn' must feed 'dense1_act'"):
        contract.check(after, compose_run("model.bn=before").model, 10)
    with pytest.raises(contract.ContractError, match="'logits' must give 3 logit"):
        contract.check(after, compose_run("model.bn=after").model, 3)


def test_a_users_builder_trains_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = cli(
        *TINY,
        "model._target_=tests.builders.wide_then_narrow",
        "model.name=wide_then_narrow",
        "model.bn=before",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "done" and record["config"]["model"]["_target_"] == "tests.builders.wide_then_narrow"
    assert record["probe"].startswith("input of dense2_act, unit 0")  # the user's last nonlinearity


@pytest.mark.parametrize("name", FEEDFORWARD)
@pytest.mark.parametrize("bn", ["before", "after"])
@pytest.mark.parametrize("norm", ["batch", "batch_renorm", "layer", "group"])
def test_every_normalizer_keeps_the_contract_and_layer_and_group_norm_ignore_the_batch(name, bn, norm):
    """Each model.norm is the block's normalisation layer where model.bn places it, at any depth; layer and group normalisation
    treat each example on its own, so an example's output does not depend on the rest of its batch, nor on the mode.
    (Batch renorm's unclipped corrections make its forward pass the moving averages': not checked either way.)"""
    cfg = compose_run(
        f"model={name}",
        f"model.bn={bn}",
        f"model.norm={norm}",
        "model.activation=relu",
        "model.hidden=[64]",
        "model.depth=4",
    )
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)  # contract.check runs inside
    assert len(blocks.nonlinearities(model)) == len(cfg.model.conv) + 4
    layer = model.get_layer("dense1_bn")
    assert isinstance(layer, blocks.NORM_LAYERS[cfg.model.norm])
    if name == "cnn" and norm == "layer":  # a conv block's layer norm: the whole feature map, one group
        assert model.get_layer("conv1_bn").groups == 1
    x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype("float32")
    alone, together = model(x[:1], training=True).numpy(), model(x, training=True).numpy()[:1]
    gap = np.abs(alone - together).max()
    if norm == "batch":
        assert gap > 0.01  # BN: the batch sets the statistics
    elif norm in ("layer", "group"):
        assert gap < 1e-3  # float rounding only (another batch shape, another reduction order)
        np.testing.assert_allclose(model(x, training=False).numpy(), model(x, training=True).numpy(), atol=1e-3)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_builder_builds_what_its_arithmetic_says(name):
    cfg = compose_run(*TINY, f"model={name}", "model.bn=before")
    spec = data_lib.spec(cfg.data.name)
    model = contract.build(cfg.model, spec.input_shape, spec.n_classes, seed=0)  # checks the contract
    built = [(a.name, a.output.shape[-1]) for a in blocks.nonlinearities(model)]
    assert built == (BUILDERS[name].acts(cfg.model) if BUILDERS[name].acts else [])
