"""Recomputed BN statistics against a network whose population statistics are known in closed form."""

import keras
import numpy as np
import pytest

from bn_study.probes import precise_bn


def _identity_net(features: int, eps: float = 1e-3) -> keras.Model:
    """x -> identity Dense -> BN1 -> identity Dense -> BN2: BN1 sees x itself; BN2 sees each batch normalised by its own statistics."""
    inputs = keras.Input((features,))
    x = inputs
    for i in (1, 2):
        x = keras.layers.Dense(features, use_bias=False, kernel_initializer="identity", name=f"dense{i}_linear")(x)
        x = keras.layers.BatchNormalization(epsilon=eps, center=False, scale=False, name=f"dense{i}_bn")(x)
    return keras.Model(inputs, x)


def test_recomputed_statistics_are_the_known_population_ones():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]).astype("float32")
    model = _identity_net(3)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    stats = precise_bn.recompute(model, x, batch_size=50, batches=10)

    # BN1: the data's own mean and (biased) variance, exactly, since 10 batches of 50 partition the 500 rows.
    np.testing.assert_allclose(stats["dense1_bn"][0], x.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["dense1_bn"][1], x.var(0), rtol=1e-4)
    # BN2: every batch normalised by its own statistics, so mean 0 and variance mean_b var_b / (var_b + eps).
    batches = x.reshape(10, 50, 3)
    var_b = batches.var(1)
    np.testing.assert_allclose(stats["dense2_bn"][0], 0.0, atol=1e-5)
    np.testing.assert_allclose(stats["dense2_bn"][1], (var_b / (var_b + 1e-3)).mean(0), rtol=1e-4)
    # Measuring changed nothing in the model.
    for a, b in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())


def test_applied_statistics_hold_inside_the_block_only():
    model = _identity_net(2)
    x = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")
    stats = {"dense1_bn": (np.array([2.0, 4.0]), np.array([1.0, 4.0])), "dense2_bn": (np.zeros(2), np.ones(2))}
    with precise_bn.applied(model, stats):
        out = model(x, training=False).numpy()
    np.testing.assert_allclose(
        out, (x - [2.0, 4.0]) / np.sqrt(np.array([1.0, 4.0]) + 1e-3) / np.sqrt(1 + 1e-3), rtol=1e-5
    )
    np.testing.assert_array_equal(
        model.get_layer("dense1_bn").moving_mean.numpy(), [0.0, 0.0]
    )  # back to Keras's initial values


def test_too_few_examples_are_refused():
    with pytest.raises(ValueError, match="need 100 examples, got 60"):
        precise_bn.recompute(_identity_net(2), np.zeros((60, 2), "float32"), batch_size=50, batches=2)


def test_precise_bn_run_option_evaluates_with_what_the_probe_measures(run_tiny):
    """Training never reads BN's moving averages, so a run with trainer.precise_bn trains exactly as one without (dropout too);
    its test accuracy at every evaluation is the probe's acc_precise (over the same batches), and it differs from
    the moving averages' (short run, slow average) where the lag is real."""
    import pandas as pd

    common = (
        "model.activation=relu",
        "model.bn=before",
        "optimizer=adam",
        "optimizer.lr=0.001",
        "trainer.batch_size=40",
        "model.bn_momentum=0.999",
        "model.dropout=0.2",
    )  # dropout draws masks while statistics are recomputed: its seed state must be put back
    probed, probed_dir = run_tiny(*common, "probe.bn_modes=true", "probe.precise_batches=30", name="probed")
    option, option_dir = run_tiny(*common, "trainer.precise_bn=30", name="option")

    def read(folder):
        return pd.read_csv(folder / "curves.csv").pivot_table(index="step", columns=["split", "metric"], values="value")

    p, o = read(probed_dir), read(option_dir)
    pd.testing.assert_series_equal(p[("train", "loss")], o[("train", "loss")])
    # mnist5k's 1,000 test images are 25 batches of 40: the probe sees the whole test split too.
    np.testing.assert_allclose(o[("test", "accuracy")], p[("bn_modes", "acc_precise")], atol=1e-6)
    assert (p[("bn_modes", "acc_precise")] - p[("test", "accuracy")]).abs().max() > 0.05
    assert probed["run_id"] != option["run_id"]


def test_a_key_added_later_keeps_earlier_run_ids():
    from bn_study import config
    from tests.conftest import compose_run

    run = compose_run("data=mnist5k")
    assert (
        "precise_bn" not in config.identity(run)["trainer"] and "precise_batches" not in config.identity(run)["probe"]
    )
    with_key = compose_run("data=mnist5k", "trainer.precise_bn=5")
    assert config.config_id(config.identity(with_key)) != config.config_id(config.identity(run))


def test_debiased_moving_averages_take_out_the_start():
    """After k updates with constant batch statistics (mu, var), Keras's averages are momentum^k x start + (1 - momentum^k) x (mu, var):
    taking the start (0, 1) out gives (mu, var) back exactly; before any step there is nothing to correct."""
    model = _identity_net(2)
    layer = model.get_layer("dense1_bn")
    left = layer.momentum**30
    mu, var = np.array([2.0, -1.0]), np.array([4.0, 0.25])
    layer.moving_mean.assign((1 - left) * mu)
    layer.moving_variance.assign(left * 1.0 + (1 - left) * var)
    got = precise_bn.debiased(model, 30)["dense1_bn"]
    np.testing.assert_allclose(got[0], mu, rtol=1e-5)
    np.testing.assert_allclose(got[1], var, rtol=1e-4)
    assert precise_bn.debiased(model, 0) == {}
