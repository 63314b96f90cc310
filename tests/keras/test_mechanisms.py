"""The mechanism probes on cases with a known answer, and a run with every probe on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from bn_study.probes.mechanisms import covariate_shift, landscape
from bn_study.probes.registry import PROBES
from bn_study.studies import plan
from tests.conftest import TINY, compose_run

# Every registered probe beside Figure 1's, which every run has on.
# probe.precise and bn_modes's acc_precise recompute BN's statistics over 2 training batches.
PROBES_ON = [*(f"probe.{flag}=true" for flag in PROBES if flag != "enabled"), "probe.precise_batches=2"]


def test_landscape_of_a_quadratic_has_its_curvature_as_beta_smoothness():
    a = 3.0  # loss a/2 ||w||^2: gradient a w, so the gradient changes by a per unit distance in every direction
    w = [tf.constant([1.0, -2.0]), tf.constant([[0.5]])]

    def loss_and_grad(v):
        return 0.5 * a * sum(tf.reduce_sum(t * t) for t in v), [a * t for t in v]

    g = loss_and_grad(w)[1]
    out = {k: float(v) for k, v in landscape(loss_and_grad, w, g, [0.1, 0.2, 0.5]).items()}
    sq = 1 + 4 + 0.25
    losses = [0.5 * a * sq * (1 - eta * a) ** 2 for eta in (0.1, 0.2, 0.5)]
    assert out["beta_smoothness"] == pytest.approx(a, rel=1e-5)
    assert out["loss_min"] == pytest.approx(min(losses), rel=1e-5) and out["loss_range"] == pytest.approx(
        max(losses) - min(losses), rel=1e-5
    )
    assert out["grad_change_max"] == pytest.approx(0.5 * a * a * np.sqrt(sq), rel=1e-5)


def test_covariate_shift_matches_the_closed_form():
    # L(a, b) = (a b)^2 / 2: dL/da = a b^2, dL/db = a^2 b. Stepping a first changes b's gradient to a'^2 b.
    a, b, lr = 1.5, -0.7, 0.2
    w = [tf.constant(a), tf.constant(b)]

    def grad(v):
        return [v[0] * v[1] ** 2, v[0] ** 2 * v[1]]

    out = covariate_shift(grad, w, grad(w), group=[0, 1], layer=1, lr=lr)
    a2 = a - lr * a * b * b
    assert float(out["l2"]) == pytest.approx(abs(a2 * a2 * b - a * a * b), rel=1e-5)
    assert float(out["cos"]) == pytest.approx(1.0)  # a scalar keeps its sign here
    unchanged = covariate_shift(grad, w, grad(w), group=[0, 1], layer=0, lr=lr)  # nothing comes before the first layer
    assert float(unchanged["l2"]) == 0.0


def _mechanisms(probe: str, *overrides):
    """The Mechanisms probe of a freshly prepared tiny run with only `probe` switched on (less to compile)."""
    from bn_study.run import execute as run
    from tests.conftest import TINY, compose_run

    cfg = compose_run(*TINY, f"probe.{probe}=true", *overrides)
    data, compiled = run.prepare(cfg)
    return compiled.probes[-1], compiled.trainer, data


def test_gradient_norm_of_the_linear_output_layer_and_its_sgd_update():
    # logits = h W + b on the hidden features h, so dL/dW = h^T (softmax(logits) - onehot(y)) / n, and one
    # plain SGD step on the same examples moves W by lr dL/dW.
    import keras

    probe, trainer, _ = _mechanisms(
        "gradients", "model.hidden=[8]", "optimizer.lr=0.3", "probe.batch=60", "trainer.batch_size=60"
    )
    model = trainer.model
    h = keras.Model(model.inputs, model.get_layer("dense1_act").output)(probe._x).numpy()
    w, b = (v.numpy() for v in model.get_layer("logits").weights)
    logits = h @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(p)), probe._y.numpy()] -= 1
    expected = np.linalg.norm(h.T @ p / len(p))
    got = probe.measure()["grad"]
    assert got["logits.grad_norm"] == pytest.approx(expected, rel=1e-4)
    assert got["logits.update_ratio"] == pytest.approx(0.3 * expected / np.linalg.norm(w), rel=1e-3)


def test_gradient_norm_of_every_layer_of_a_deep_linear_network_is_backpropagation_by_hand():
    """The gradient-norm-by-layer measure (the depth study's) against the closed form of a linear network:
    delta_out = (softmax(z) - onehot(y)) / n, delta_k = delta_(k+1) W_(k+1)^T, dL/dW_k = h_(k-1)^T delta_k."""
    probe, trainer, _ = _mechanisms(
        "gradients", "model.hidden=[6]", "model.depth=4", "model.activation=linear", "probe.batch=50"
    )
    model = trainer.model
    kernels = [model.get_layer(f"dense{i}_linear").kernel.numpy() for i in range(1, 5)] + [
        model.get_layer("logits").kernel.numpy()
    ]
    h = [probe._x.numpy().reshape(50, -1).astype(np.float64)]
    for w in kernels:
        h.append(h[-1] @ w)  # biases start at zero
    p = np.exp(h[-1] - h[-1].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(50), probe._y.numpy()] -= 1
    delta, expected = p / 50, []
    for k in range(len(kernels) - 1, -1, -1):
        expected.insert(0, np.linalg.norm(h[k].T @ delta))
        delta = delta @ kernels[k].T
    got = probe.measure()["grad"]
    names = [f"dense{i}" for i in range(1, 5)] + ["logits"]
    np.testing.assert_allclose([got[f"{n}.grad_norm"] for n in names], expected, rtol=1e-4)
    assert len({round(e, 6) for e in expected}) == 5  # five different answers: a layer mixed up would fail


def test_activation_stats_of_a_constant_preactivation():
    probe, trainer, _ = _mechanisms("activations", "model.hidden=[4]", "model.activation=sigmoid")
    linear = trainer.model.get_layer("dense1_linear")
    linear.kernel.assign(np.zeros(linear.kernel.shape, np.float32))
    linear.bias.assign(np.full(4, 3.5, np.float32))  # every pre-activation is 3.5: sigmoid(3.5) = 0.97, saturated
    act = probe.measure()["act"]
    assert act["dense1.mean"] == pytest.approx(3.5) and act["dense1.std"] == pytest.approx(0, abs=1e-6)
    assert act["dense1.p15"] == pytest.approx(3.5) and act["dense1.p85"] == pytest.approx(3.5)
    assert act["dense1.saturated"] == 1.0
    linear.bias.assign(np.full(4, -1.0, np.float32))
    assert probe.measure()["act"]["dense1.saturated"] == 0.0


def test_batch_statistics_vs_moving_averages_and_the_bn_momentum_knob():
    none = _mechanisms("bn_modes", "model.bn=none")[0].measure()["bn_modes"]
    assert none["acc_batch_stats"] == none["acc_moving_averages"]  # no BN: the two modes are one

    from bn_study.run.train import BatchOrder

    def after_20_steps(momentum):
        probe, trainer, data = _mechanisms(
            "bn_modes", "model.bn=before", "optimizer=momentum", "optimizer.lr=0.05", f"model.bn_momentum={momentum}"
        )
        trainer.train(BatchOrder(len(data.x_train), 60, seed=0).take(20)[0])
        return probe, trainer, probe.measure()["bn_modes"]

    # After 20 steps the default moving averages (momentum 0.99) have moved 1 - 0.99^20 = 18% of the way
    # from their start (mean 0, variance 1): inference lags far behind; with momentum 0 they are the last batch's.
    probe, trainer, slow = after_20_steps(0.99)
    assert slow["acc_batch_stats"] > 0.5 and slow["acc_moving_averages"] < slow["acc_batch_stats"] - 0.2
    fast = after_20_steps(0.0)[2]
    assert abs(fast["acc_moving_averages"] - fast["acc_batch_stats"]) < 0.1
    for layer in trainer.model.layers:
        if hasattr(layer, "moving_mean"):
            layer.moving_mean.assign(
                layer.moving_mean + 50.0
            )  # wreck the moving averages: batch statistics ignore them
    assert probe.measure()["bn_modes"]["acc_batch_stats"] == slow["acc_batch_stats"]


def test_a_run_with_every_probe_on_trains_exactly_as_one_without(run_tiny):
    _, plain = run_tiny("model.bn=before", "optimizer=momentum", name="plain")
    record, probed = run_tiny("model.bn=before", "optimizer=momentum", *PROBES_ON, name="probed")
    a, b = pd.read_csv(plain / "curves.csv"), pd.read_csv(probed / "curves.csv")
    # the plain run's every number, unchanged among the probed run's (which logs more, some in the same splits)
    plain_keys = b.set_index(["split", "metric"]).index.isin(a.set_index(["split", "metric"]).index)
    pd.testing.assert_frame_equal(
        a.drop(columns="run_id").reset_index(drop=True),
        b[plain_keys].drop(columns="run_id").reset_index(drop=True),
    )
    got = b.groupby("split")["metric"].apply(set).to_dict()
    assert {"dense1.mean", "dense3.saturated", "dense2.p50"} <= got["act"]
    assert {"dense1.grad_norm", "logits.update_ratio"} <= got["grad"]
    assert {"dense2.ics_l2", "logits.ics_cos"} <= got["ics"] and "dense1.ics_l2" not in got["ics"]
    assert {"loss_range", "grad_change_max", "beta_smoothness"} <= got["landscape"]
    assert {"acc_batch_stats", "acc_moving_averages", "acc_precise"} <= got["bn_modes"]
    assert {"p15", "p50", "p85"} == got["probe_precise"] and got["probe_units_precise"] == got["probe_units"]
    # every number finite, but the debiased moving averages before the first step (there is nothing to debias)
    before_any_step = (b["metric"] == "acc_moving_debiased") & (b["step"] == 0)
    assert np.isfinite(b[(b["split"] != "train") & ~before_any_step]["value"]).all()
    # what the probes registry says a run logs (a study's plan checks its runs against it) is what this one logged
    assert set(got) == {split for split, _ in plan.splits(compose_run(*TINY, "model.bn=before", *PROBES_ON))}
