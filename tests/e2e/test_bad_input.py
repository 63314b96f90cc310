"""Every kind of bad input: one error line naming the key and what it allows, exit 2, no run folder."""

import pytest

from bn_study.data.datasets import DATASETS
from bn_study.models.registry import BUILDERS
from tests.conftest import TINY, cli, cli_in_process, refused

CASES = [
    (
        ["data=imagenet"],
        f"data=imagenet: unknown option; choose one of: {', '.join(sorted(DATASETS))}",
    ),
    (["model=rnn"], f"model=rnn: unknown option; choose one of: {', '.join(sorted(BUILDERS))}"),
    (["optimizer=rmsprop"], "optimizer=rmsprop: unknown option; choose one of: adam, momentum, sgd"),
    (
        ["experiment=nope"],
        "experiment=nope: unknown option; choose one of: batch_size, bn_inference, bn_inference_cnn, depth, depth_he, depth_nonlinearity, depth_precise, dropout, fig1",
    ),
    (["model.bn=sideways"], "model.bn: Invalid value 'sideways', expected one of [none, before, after]"),
    (["model.activation=swishy"], "model.activation: Invalid value 'swishy', expected one of [sigmoid, tanh, relu"),
    (["trainer.stepz=5"], "trainer.stepz: unknown key; trainer has: steps, batch_size, eval_every"),
    (["+trainer.stepz=5000"], "trainer.stepz: unknown key; trainer has: steps, batch_size, eval_every"),
    (["+model.widths=[100,100]"], "model.widths: unknown key; model has: name, _target_, conv, kernel_size, hidden"),
    (["lr=0.1"], "lr: unknown key; the top level has: data, model, optimizer, trainer, probe, seed, study, quick, tag"),
    (["trainer.steps=many"], "trainer.steps: Value 'many' of type 'str' could not be converted to Integer"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: must be > 0"),
    (["trainer.steps=0"], "trainer.steps=0: must be an integer in [1, 10,000,000]"),
    (["trainer.steps=1000000000000"], "trainer.steps=1000000000000: must be an integer in [1, 10,000,000]"),
    (
        ["trainer.steps=1e12"],
        "trainer.steps: Value '1000000000000.0' of type 'float' could not be converted to Integer",
    ),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
    (["optimizer.lr=nan"], "optimizer.lr=nan: must be a finite number"),
    (["model.init_std=inf"], "model.init_std=inf: must be a finite number"),
    (["model.l2=inf"], "model.l2=inf: must be a finite number"),
    (["seed=4294967296"], "seed=4294967296: must be an integer in [0, 4294967295] (2**32 - 1)"),
    (["seed=-1"], "seed=-1: must be an integer in [0, 4294967295] (2**32 - 1)"),
    (
        ["trainer.batch_size=3601"],
        "trainer.batch_size=3601: must be at most the training split's 3,600 examples (data=mnist5k)",
    ),
    (
        ["model=cnn", "data=digits"],
        "model.conv=[32, 64, 64]: conv block 3 gets a 0x0 input from data=digits (8x8), smaller than model.kernel_size=3",
    ),
    (
        ["model=cnn", "model.kernel_size=50"],
        "conv block 1 gets a 28x28 input from data=mnist5k (28x28), smaller than model.kernel_size=50",
    ),
    (
        ["model=cnn", "model.conv=[8,8,8,8,8]"],
        "model.conv=[8, 8, 8, 8, 8]: conv block 4 gets a 1x1 input from data=mnist5k (28x28)",
    ),
    (["study=" + "a" * 65], "must be letters, digits, '_' or '-', at most 64 characters"),
    (["study=../elsewhere"], "study=../elsewhere: must be letters, digits, '_' or '-', at most 64 characters"),
    (["hydra.run.dir="], "hydra.run.dir=: must name a folder of its own (this would write into the current folder"),
    (["hydra.run.dir=my", "runs/a"], "'runs/a': not a key=value override; quote a value that holds spaces"),
    (["model.dropout=1.5"], "model.dropout=1.5: must be in [0, 1)"),
    (
        ["model.norm=instance"],
        "model.norm: Invalid value 'instance', expected one of [batch, batch_renorm, layer, group]",
    ),
    (["model.init_std=0"], "model.init_std=0.0: must be > 0, or null for model.kernel_init"),
    (
        ["data=circles", "model=cnn"],
        "model.conv=[32, 64, 64] needs image data (H, W, C); data=circles's inputs have shape (2,)",
    ),
    (["probe.unit=100"], "probe.unit=100: dense3_act has 100 units (use 0..99)"),
    (["model.input_bn=true"], "model.input_bn: Invalid value 'True', expected one of [none, feature, scalar]"),
    (["data.standardize=pixel"], "data.standardize: Invalid value 'pixel', expected one of [none, feature, scalar]"),
    (["data=mnist", "data.path=/no/such/mnist"], "data.path=/no/such/mnist: must be an existing file or folder"),
    (["data=digits", "data.path=tests"], "data.path=tests: must be null unless data=mnist or data=fashion_mnist"),
    (["data=mnist", "data.path=README.md"], "data.path=README.md: must be a folder holding the four IDX files"),
    (["data.val_fraction=0.6"], "data.val_fraction=0.6: must be in [0, 0.5)"),
    (
        ["objective=test_accuracy"],
        "objective=test_accuracy: must be one of val_accuracy, val_loss (a search selects on validation, never on the "
        "test split)",
    ),
    (["model.output_bn=true"], "model.output_bn=True: must be false when model.bn=none"),
    (
        ["model.output=sigmoid"],
        "model.output=sigmoid: needs a two-class dataset; this one has 10 classes (use model.output=softmax)",
    ),
    (
        ["model.name=rnn"],
        f"model.name=rnn: must be a registered builder ({', '.join(BUILDERS)}), or any label with model._target_=pkg.module.build",
    ),
    (["model.conv=[8]"], "model.conv=[8]: must be [] unless model=cnn (model=mlp does not read it)"),
    (
        ["model._target_=no-such"],
        "model._target_=no-such: must be a dotted path to a builder function, pkg.module.build",
    ),
    (
        ["model._target_=nosuchpkg.build"],
        "model._target_=nosuchpkg.build: cannot import nosuchpkg (No module named 'nosuchpkg')",
    ),
    (
        ["model._target_=tests.builders.missing"],
        "model._target_=tests.builders.missing: tests.builders has no function missing",
    ),
    (
        ["model._target_=tests.builders.not_a_function"],
        "model._target_=tests.builders.not_a_function: tests.builders has no function not_a_function",
    ),
    (
        ["model._target_=tests.builders.unnamed"],
        "model._target_=tests.builders.unnamed: breaks the model contract: no hidden nonlinearity: name each one '{block}_act'",
    ),
    (
        ["model._target_=tests.builders.always_after", "model.bn=before"],
        "breaks the model contract: model.bn=before: 'dense1_bn' must feed 'dense1_act'",
    ),
    (
        ["model._target_=tests.builders.always_after"],
        "breaks the model contract: model.bn=none, but the model has normalisation layers: dense1_bn",
    ),
    (
        ["model._target_=tests.builders.wide_then_narrow", "probe.unit=40"],
        "probe.unit=40: dense2_act has 32 units (use 0..31)",
    ),
    (
        ["paths.results="],
        "paths.results=: must name a folder (empty would write results/<study>/ at the file system's root)",
    ),
    (["optimizer.lr=${nope}"], "optimizer.lr: Interpolation key 'nope' not found"),
    (["tag=héllo"], "tag=héllo: a value with characters beyond ASCII must be quoted, e.g. 'tag=\"héllo\"'"),
]


@pytest.mark.parametrize("overrides, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_refused_in_one_line(tmp_path, overrides, message):
    out = tmp_path / "run"
    proc = cli_in_process(*TINY, f"hydra.run.dir={out}", *overrides)  # after it: a case may set hydra.run.dir itself
    assert message in refused(proc), proc.stderr
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


# Refusals that need the builder, the tracker or the callback made once (what `preflight.checked` does before any run).
MADE_CASES = [
    (
        ["model._target_=tests.builders.raises"],
        "model._target_=tests.builders.raises: the builder raised ValueError: no such layer size: [100, 100, 100] at builders.py:",
    ),
    (
        ["logger=mlflow", "logger.mlflow_uri=bogus://x"],
        "logger.mlflow_uri=bogus://x: MLflow cannot use it (Model registry functionality is unavailable; ",
    ),
    (
        ["logger=mlflow", "logger.mlflow_uri=file:/tmp/mlruns"],
        "logger.mlflow_uri=file:/tmp/mlruns: MLflow cannot use it (The filesystem tracking backend",
    ),
    (
        ["+callbacks.x._target_=collections.OrderedDict"],
        "callbacks.x: collections.OrderedDict makes a OrderedDict, not a keras.callbacks.Callback, which is all a run drives",
    ),
]


@pytest.mark.parametrize("overrides, message", MADE_CASES, ids=[" ".join(c[0]) for c in MADE_CASES])
def test_what_cannot_be_made_is_refused_naming_the_key(overrides, message):
    from bn_study.config import ConfigError
    from bn_study.run import preflight
    from tests.conftest import compose_run

    with pytest.raises(ConfigError) as err:
        preflight.checked(compose_run(*TINY, *overrides))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
