"""The LSTM builder and its normalised cells: Keras's LSTM without normalisation, Cooijmans et al.'s per-time-step
batch statistics, layer norm's batch independence, the fixed pixel permutation, and the model contract."""

import keras
import numpy as np
import pytest

from bn_study.models import contract
from bn_study.models.lstm_cell import FixedPermutation, NormLSTM
from tests.conftest import compose_run

B, T, F, U = 6, 5, 3, 4


def _sequences(seed=0, scale_by_step=False):
    x = np.random.default_rng(seed).normal(size=(B, T, F)).astype("float32")
    if scale_by_step:  # each time step its own scale and offset, so per-step statistics differ
        x = x * np.arange(1, T + 1, dtype="float32")[None, :, None] + np.arange(T, dtype="float32")[None, :, None]
    return x


def test_without_normalisation_it_is_keras_lstm():
    x = _sequences()
    ours = NormLSTM(U)
    ours.build(x.shape)
    theirs = keras.layers.LSTM(U)
    theirs.build(x.shape)
    # Same initialisers: the forget gate's bias starts at 1, the rest at 0 (Keras's unit_forget_bias).
    np.testing.assert_array_equal(ours.bias.numpy(), theirs.cell.bias.numpy())
    theirs.set_weights([ours.kernel.numpy(), ours.recurrent_kernel.numpy(), ours.bias.numpy()])
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), atol=1e-5)


def test_batch_norm_keeps_statistics_per_time_step_and_infers_with_them():
    x = _sequences(scale_by_step=True)
    cell = NormLSTM(U, norm="batch", momentum=0.0)  # momentum 0: the moving averages become this batch's statistics
    trained = cell(x, training=True).numpy()
    # Per time step: the x-transform's mean over the batch, in closed form.
    expected = np.einsum("btf,fk->btk", x, cell.kernel.numpy()).mean(axis=0)
    np.testing.assert_allclose(cell.moving["x_mean"].numpy(), expected, rtol=1e-4, atol=1e-5)
    assert cell.moving["x_mean"].shape == (T, 4 * U) and cell.moving["c_variance"].shape == (T, U)
    assert np.ptp(cell.moving["x_mean"].numpy(), axis=0).max() > 0.1  # the steps' statistics differ, and are kept apart
    # With the averages equal to the batch's own statistics, inference on that batch is training's computation.
    np.testing.assert_allclose(cell(x, training=False).numpy(), trained, atol=1e-5)
    # In training an example's output depends on its batch; at inference it does not.
    assert np.abs(cell(x[:3], training=True).numpy() - trained[:3]).max() > 1e-3
    np.testing.assert_allclose(cell(x[:3], training=False).numpy(), cell(x, training=False).numpy()[:3], atol=1e-5)


def test_the_moving_averages_are_debiased():
    """After n updates inference reads the momentum-weighted average of the n batches' statistics, whatever the start."""
    cell = NormLSTM(U, norm="batch", momentum=0.9)
    first, second = _sequences(1, scale_by_step=True), _sequences(2)
    cell.build(first.shape)
    mean, var = (v.numpy() for v in cell.population("x"))
    np.testing.assert_array_equal(mean, 0.0)  # no batch seen yet: Keras's start
    np.testing.assert_array_equal(var, 1.0)
    cell(first, training=True)
    cell(second, training=True)
    w = cell.kernel.numpy()
    stats = [np.einsum("btf,fk->btk", x, w) for x in (first, second)]
    mean, var = (v.numpy() for v in cell.population("x"))
    np.testing.assert_allclose(mean, (0.9 * stats[0].mean(0) + stats[1].mean(0)) / 1.9, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, (0.9 * stats[0].var(0) + stats[1].var(0)) / 1.9, rtol=1e-4, atol=1e-5)


def test_gains_start_at_gamma_and_the_shifts_at_zero():
    cell = NormLSTM(U, norm="batch", gamma=0.1)
    cell.build((None, T, F))
    for gain in (cell.gamma_x, cell.gamma_h, cell.gamma_c):
        np.testing.assert_allclose(gain.numpy(), 0.1)
    np.testing.assert_array_equal(cell.beta_c.numpy(), 0.0)
    assert {w.name for w in cell.non_trainable_weights} == {
        f"moving_{s}_{w}" for s in ("mean", "variance") for w in "xhc"
    } | {"moving_updates"}


def test_layer_norm_treats_each_example_alone():
    x = _sequences(scale_by_step=True)
    cell = NormLSTM(U, norm="layer")
    together = cell(x, training=True).numpy()
    np.testing.assert_allclose(cell(x[:1], training=True).numpy(), together[:1], atol=1e-5)
    np.testing.assert_allclose(cell(x, training=False).numpy(), together, atol=1e-6)
    assert not cell.non_trainable_weights


def test_the_permutation_is_fixed_and_only_reorders_the_pixels():
    x = np.random.default_rng(1).uniform(size=(4, 28, 28, 1)).astype("float32")
    plain = contract.build(compose_run("model=lstm").model, (28, 28, 1), 10, seed=3)
    permuted = contract.build(compose_run("model=lstm", "model.permute=true").model, (28, 28, 1), 10, seed=3)
    order = permuted.get_layer("permuted").order
    assert sorted(order) == list(range(784)) and (order != np.arange(784)).mean() > 0.9
    other_seed = contract.build(compose_run("model=lstm", "model.permute=true").model, (28, 28, 1), 10, seed=4)
    np.testing.assert_array_equal(other_seed.get_layer("permuted").order, order)  # one task, whatever the run's seed
    reordered = x.reshape(4, 784)[:, order].reshape(4, 28, 28, 1)
    np.testing.assert_allclose(permuted(x).numpy(), plain(reordered).numpy(), atol=1e-5)
    assert isinstance(permuted.get_layer("permuted"), FixedPermutation)


@pytest.mark.parametrize(
    "arm",
    [["model.bn=none"], ["model.bn=before"], ["model.bn=before", "model.norm=layer"]],
    ids=["lstm", "bn_lstm", "ln_lstm"],
)
def test_the_lstm_builder_keeps_the_contract(arm):
    cfg = compose_run("model=lstm", *arm)
    model = contract.build(cfg.model, (28, 28, 1), 10, seed=0)  # contract.check runs inside
    cell = model.get_layer("lstm1")
    assert cell.units == 100 and cell.norm == (None if cfg.model.bn.value == "none" else cfg.model.norm.value)
    assert model.output_shape == (None, 10)
    wrong = compose_run(
        "model=lstm", "model.bn=before", "model.norm=layer" if cell.norm != "layer" else "model.norm=batch"
    ).model
    with pytest.raises(contract.ContractError, match="the LSTM 'lstm1' normalises with"):
        contract.check(model, wrong, 10)


def test_precise_statistics_of_a_bn_lstm_per_time_step():
    """Recomputed over equal batches that partition a dataset, the input transform's statistics are that dataset's,
    per time step, in closed form; measuring changes nothing, assigning makes inference read them."""
    from bn_study.probes import precise_bn

    model = contract.build(
        compose_run("model=lstm", "model.bn=before", "model.hidden=[8]").model, (28, 28, 1), 10, seed=0
    )
    x = np.random.default_rng(2).uniform(size=(48, 28, 28, 1)).astype("float32")
    model(x[:16], training=True)  # one update, so the moving averages are not at their start
    cell = model.get_layer("lstm1")
    before = [v.numpy() for v in model.non_trainable_variables]
    stats = precise_bn.recompute(model, x, batch_size=16, batches=3)
    for v, old in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)
    xw = np.einsum("btf,fk->btk", x.reshape(48, 28, 28).astype("float64"), cell.kernel.numpy().astype("float64"))
    mean, var = stats["lstm1/x"]
    np.testing.assert_allclose(mean, xw.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, xw.var(0), rtol=1e-3, atol=1e-6)
    assert stats["lstm1/h"][0].shape == (28, 32) and stats["lstm1/c"][1].shape == (28, 8)
    precise_bn.assign(model, stats)
    for which in ("x", "h", "c"):
        np.testing.assert_allclose(cell.population(which)[1].numpy(), stats[f"lstm1/{which}"][1], rtol=1e-4, atol=1e-7)
