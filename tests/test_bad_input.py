"""Every kind of bad input: one error line naming the key and what it allows, exit 2, no run folder."""

import pytest

from tests.conftest import TINY, cli

CASES = [
    (["data=imagenet"], "data=imagenet: unknown option; choose one of: cifar10, circles, digits, fashion_mnist, mnist, mnist5k"),
    (["model=rnn"], "model=rnn: unknown option; choose one of: cnn, mlp"),
    (["optimizer=rmsprop"], "optimizer=rmsprop: unknown option; choose one of: adam, momentum, sgd"),
    (["experiment=nope"], "experiment=nope: unknown option; choose one of: batch_size, dropout, fig1, fig1_pilot, inception_table, init_scale, input_bn, keras_blog"),
    (["model.bn=sideways"], "model.bn: Invalid value 'sideways', expected one of [none, before, after]"),
    (["model.activation=swishy"], "model.activation: Invalid value 'swishy', expected one of [sigmoid, tanh, relu"),
    (["trainer.stepz=5"], "trainer.stepz: unknown key; trainer has: steps, batch_size, eval_every"),
    (["lr=0.1"], "lr: unknown key; the top level has: data, model, optimizer, trainer, probe, seed, study, quick, tag"),
    (["trainer.steps=many"], "trainer.steps: Value 'many' of type 'str' could not be converted to Integer"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: must be > 0"),
    (["trainer.steps=0"], "trainer.steps=0: must be an integer >= 1"),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    (["model.dropout=1.5"], "model.dropout=1.5: must be in [0, 1)"),
    (["model.init_std=0"], "model.init_std=0.0: must be > 0, or null for model.kernel_init"),
    (["data=circles", "model=cnn"], "model.conv=[32, 64, 64] needs image data (H, W, C); this dataset's inputs have shape (2,)"),
    (["probe.unit=100"], "probe.unit=100: dense3_act has 100 units (use 0..99)"),
    (["model.input_bn=true"], "model.input_bn: Invalid value 'True', expected one of [none, feature, scalar]"),
    (["data.standardize=pixel"], "data.standardize: Invalid value 'pixel', expected one of [none, feature, scalar]"),
    (["data.val_fraction=0.6"], "data.val_fraction=0.6: must be in [0, 0.5)"),
    (["model.output_bn=true"], "model.output_bn=True: must be false when model.bn=none"),
    (["model.output=sigmoid"], "model.output=sigmoid: needs a two-class dataset; this one has 10 classes (use model.output=softmax)"),
]


@pytest.mark.parametrize("overrides, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, overrides, message):
    out = tmp_path / "run"
    proc = cli(*TINY, *overrides, f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bn-study: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()


def test_mnist_without_network_falls_back_unless_strict(tmp_path, monkeypatch):
    """data=mnist needs a download here; strict refuses, the default falls back and says so."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-cache"))
    strict = cli("data=mnist", "data.strict=true", "trainer.steps=1", f"hydra.run.dir={tmp_path / 'strict'}")
    if strict.returncode == 0:
        pytest.skip("full MNIST could be downloaded: this machine has a network")
    assert strict.returncode == 2 and "data=mnist: keras.datasets.mnist could not be loaded" in strict.stderr
    assert not (tmp_path / "strict").exists()
    loose = cli("data=mnist", "trainer.steps=20", "trainer.eval_every=20", f"hydra.run.dir={tmp_path / 'loose'}")
    assert loose.returncode == 0, loose.stderr
    warnings = [line for line in loose.stdout.splitlines() if line.startswith("WARNING data=mnist")]
    assert len(warnings) == 1 and "bundled 5,000-image subset" in warnings[0]
    import json

    data = json.loads((tmp_path / "loose" / "run.json").read_text())["data"]
    assert data["requested"] == "mnist" and data["name"] == "mnist5k" and "no network" in data["fallback"]
