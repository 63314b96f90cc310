"""Refusals of config values alone: one line naming the key and what it allows (the CLI's path of such a refusal:
tests/e2e/test_bad_input.py)."""

import pytest

from bn_study.config import ConfigError
from tests.conftest import TINY, compose_run

# Refusals of config values alone, checked in-process (the CLI path of such a refusal is the cases above).
CONFIG_CASES = [
    (["model.depth=0"], "model.depth=0: must be an integer in [1, 999], or null for model.hidden as it is"),
    (["model.depth=1000"], "model.depth=1000: must be an integer in [1, 999], or null for model.hidden as it is"),
    (
        ["model=cnn", "model.depth=999"],
        "model.depth=999: must be at most 996 dense blocks beside 3 conv blocks (a run initialises at most 1000 layers",
    ),
    (
        ["optimizer.lr=1e39"],
        "optimizer.lr=1e+39: must be a finite number, at most 3.403e+38 in magnitude (the model computes in float32)",
    ),
    (["model.depth=3", "model.hidden=[]"], "model.hidden=[]: must be non-empty when model.conv is empty"),
    (
        ["model.bn=before", "model.norm=group", "model.norm_groups=3"],
        "model.norm_groups=3: must divide every block's width (here [100, 100, 100]); 100 does not split into 3 equal groups",
    ),
    (
        ["model.bn=before", "model.norm=layer", "model.bn_momentum=0.9"],
        "model.bn_momentum=0.9: must be 0.99 (unset) with model.norm=layer: layer and group normalisation keep no moving averages",
    ),
    (
        ["model.bn=before", "model.norm=group", "model.output_bn=true"],
        "model.output_bn=True: must be false with model.norm=group (the Keras blog's output layer is BN)",
    ),
    (
        ["model.bn=before", "model.norm=layer", "model.bn_renorm=true"],
        "model.bn_renorm=True: must be false with model.norm=layer (model.bn_renorm=true is model.norm=batch_renorm's older spelling)",
    ),
    (
        ["probe.precise_batches=10"],
        "probe.precise_batches=10: must be 0 unless probe.bn_modes=true or probe.precise=true (it adds a BN mode)",
    ),
    (
        ["probe.precise=true"],
        "probe.precise=True: must be false unless probe.precise_batches > 0",
    ),
    (
        ["trainer.precise_bn=5", "probe.bn_modes=true"],
        "trainer.precise_bn=5: must be 0 with probe.bn_modes=true (the probe compares BN's moving averages",
    ),
    (["trainer.precise_bn=-1"], "trainer.precise_bn=-1: must be an integer >= 0 (0: BN's moving averages)"),
    (
        ["model=lstm", "model.bn=after"],
        "model.bn=after: must be none or before for model=lstm (before: normalised inside the cell, as Cooijmans et al. 2016)",
    ),
    (["model=lstm", "model.bn=before", "model.norm=group"], "model.norm=group: must be batch or layer for model=lstm"),
    (
        ["model=lstm", "probe.gradients=true"],
        "probe.gradients=True: must be false for model=lstm (the probes read feed-forward blocks)",
    ),
    (
        ["model=lstm", "model.dropout=0.1"],
        "model.dropout=0.1: must be 0.0 for model=lstm (a feed-forward block's option)",
    ),
    (
        ["model=lstm", "data=circles"],
        "model=lstm (one row per time step) needs image data (H, W, C); data=circles's inputs have shape (2,)",
    ),
    (
        ["model=lstm", "model.bn=before", "model.norm=layer", "trainer.precise_bn=10"],
        "trainer.precise_bn=10: must be 0 for model=lstm unless model.bn=before and model.norm=batch",
    ),
    (
        ["model.permute=true"],
        "model.permute=True: must be false unless model=lstm (model=mlp does not read it)",
    ),
    (
        ["trainer.precise_bn=61"],
        "trainer.precise_bn=61: 61 batches of trainer.batch_size=60 need 3,660 training examples; the training split has 3,600 (data=mnist5k); use at most 60",
    ),
]


@pytest.mark.parametrize("overrides, message", CONFIG_CASES, ids=[" ".join(c[0]) for c in CONFIG_CASES])
def test_bad_config_values_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        compose_run(*TINY, *overrides)
    assert message in str(err.value)


def test_a_ctrl_c_swallowed_in_a_finalizer_prints_nothing_and_other_unraisables_are_reported(capsys, monkeypatch):
    import sys

    from bn_study.cli.commands import quiet_interrupt

    class Finalized:
        def __init__(self, err):
            self.err = err

        def __del__(self):
            raise self.err

    monkeypatch.setattr(sys, "unraisablehook", quiet_interrupt)
    Finalized(KeyboardInterrupt())  # dropped at once: its finalizer raises
    assert capsys.readouterr().err == ""
    Finalized(ValueError("broken"))
    assert "ValueError: broken" in capsys.readouterr().err


def test_after_a_ctrl_c_what_it_broke_prints_nothing_through_pythons_hooks(capsys, monkeypatch):
    """TensorFlow's C++ prints an error a Ctrl-C broke inside a Python call it made (a SystemError from
    `__import__`) through sys.unraisablehook or sys.excepthook: a second traceback before the command's one line."""
    import sys

    from bn_study import interrupts
    from bn_study.cli.commands import quiet_interrupt, quiet_print

    class Finalized:
        def __del__(self):
            raise SystemError("<built-in function __import__> returned a result with an exception set")

    monkeypatch.setattr(sys, "unraisablehook", quiet_interrupt)
    broken = SystemError("broken")
    quiet_print(SystemError, broken, None)
    assert "SystemError: broken" in capsys.readouterr().err  # no Ctrl-C yet: reported as Python does
    monkeypatch.setattr(interrupts, "_received", True)
    Finalized()
    quiet_print(SystemError, broken, None)
    assert capsys.readouterr().err == ""


def test_run_and_sweep_folders_are_named_by_their_start_in_utc_on_any_hosts_clock(monkeypatch):
    """The registration ledger reads a sweep's start from its folder's name as UTC."""
    import time
    from datetime import datetime, timezone
    from pathlib import Path

    from omegaconf import OmegaConf

    import bn_study
    from bn_study.config import schema

    text = (Path(bn_study.__file__).parent / "conf" / "config.yaml").read_text()
    assert "${now:" not in text and text.count("${utc_now:") == 2
    monkeypatch.setenv("TZ", "Etc/GMT-5")  # five hours east of UTC
    time.tzset()
    try:
        schema.register()
        named = OmegaConf.create({"at": "${utc_now:%Y-%m-%d_%H}"}).at
        assert named == datetime.now(timezone.utc).strftime("%Y-%m-%d_%H") != datetime.now().strftime("%Y-%m-%d_%H")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_builder_reads_plain_strings_from_the_config():
    model = compose_run("model.bn=before", "model.activation=relu", "model.norm=layer").model
    assert model.bn == "before" and model.norm == "layer" and f"{model.activation}" == "relu"
    assert isinstance(model.activation, str) and "relu".upper() == model.activation.upper()
