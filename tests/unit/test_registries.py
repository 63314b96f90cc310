"""Every entry of every registry (datasets, model builders, probes) keeps what its registry promises: its YAML, its
schema and its refusals (what each builds, loads or logs: tests/keras/test_registered.py, test_models.py and
test_mechanisms.py). A new entry is tested without a test of its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from bn_study.config import CONF_DIR, ConfigError, ModelConfig, ProbeConfig
from bn_study.data import datasets
from bn_study.models import builders as builder_modules
from bn_study.models.registry import BUILDERS
from bn_study.probes.registry import PROBES
from tests.conftest import TINY, compose_run


def _yaml(group: str, name: str) -> dict:
    return yaml.safe_load((Path(CONF_DIR) / group / f"{name}.yaml").read_text())


# -- model builders ---------------------------------------------------------------------------------------------------
def test_every_builder_module_is_registered_under_its_own_name():
    modules = sorted(p.stem for p in Path(builder_modules.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert modules == sorted(BUILDERS) and all(BUILDERS[name].name == name for name in BUILDERS)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_builder_has_its_yaml_and_its_config_passes_its_own_rules(name):
    own = _yaml("model", name)
    assert own.get("name", own.get("model", {}).get("name")) == name
    assert compose_run(*TINY, f"model={name}").model.name == name


def _off_default(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, list):
        return [8]
    return value * 2 + 1


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_builder_refuses_the_options_only_other_builders_read(name):
    defaults = ModelConfig()
    others = {o for b in BUILDERS.values() for o in b.options} - set(BUILDERS[name].options)
    for option in sorted(others):
        value = _off_default(getattr(defaults, option))
        override = f"model.{option}={value}".replace("True", "true").replace("False", "false")
        with pytest.raises(ConfigError, match=rf"^model\.{option}=.*unless model="):
            compose_run(*TINY, f"model={name}", override)


# -- datasets ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_a_dataset_has_its_yaml_and_a_study_can_rerun_on_it_unchanged(name):
    assert _yaml("data", name)["name"] == name and compose_run(f"data={name}").data.name == name
    entry = datasets.DATASETS[name]
    if entry.studies:  # a study's MNIST sweeps rerun on it unchanged
        assert (entry.spec.input_shape, entry.spec.n_classes) == ((28, 28, 1), 10)


@pytest.mark.parametrize("name", [n for n, e in datasets.DATASETS.items() if not e.files])
def test_a_dataset_that_reads_no_files_refuses_data_path(name, tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.path=.*: must be null unless data=mnist"):
        compose_run(f"data={name}", f"data.path={tmp_path}")


def test_a_dataset_name_not_registered_is_refused_naming_the_registered_ones():
    with pytest.raises(ConfigError, match=r"^data\.name=imagenet: unknown; registered: mnist, mnist5k"):
        compose_run("data.name=imagenet")


# -- probes -----------------------------------------------------------------------------------------------------------
def test_every_switch_of_the_probe_config_is_a_registered_probe():
    switches = [f.name for f in dataclasses.fields(ProbeConfig) if f.type in (bool, "bool")]
    assert switches == list(PROBES)


@pytest.mark.parametrize("flag", [f for f, p in PROBES.items() if p.blocks])
def test_a_probe_that_reads_blocks_is_refused_for_a_builder_without_them(flag):
    for name in (n for n, b in BUILDERS.items() if b.acts is None):
        with pytest.raises(ConfigError, match=rf"^probe\.{flag}=True: must be false for model={name}"):
            needs = ["probe.precise_batches=2"] if flag == "precise" else []  # what the flag needs besides a builder
            compose_run(*TINY, f"model={name}", f"probe.{flag}=true", *needs)


@pytest.mark.parametrize(
    "overrides, cut",
    [
        ([], set()),
        (["trainer.eval_subset=100"], {"test", "val", "bn_modes"}),
        (["trainer.eval_subset=100", "trainer.subset_splits=[val]"], {"val"}),  # bn_modes follows test
        (["trainer.eval_subset=100", "trainer.subset_splits=[test]"], {"test", "bn_modes"}),
    ],
)
def test_a_plan_knows_which_splits_a_run_measures_on_a_subset_before_its_end(overrides, cut):
    from bn_study.studies import plan

    assert plan.subset_splits(compose_run(*TINY, "model.bn=before", "probe.bn_modes=true", *overrides)) == cut


def test_subset_splits_names_evaluated_splits_and_only_with_an_eval_subset():
    with pytest.raises(
        ConfigError, match=r"^trainer\.subset_splits=\['train'\]: must be one of \[test\], \[val\], \[test,val\]"
    ):
        compose_run(*TINY, "trainer.eval_subset=100", "trainer.subset_splits=[train]")
    with pytest.raises(ConfigError, match=r"^trainer\.subset_splits=\['test'\]: must be \[test,val\] \(unset\) while"):
        compose_run(*TINY, "trainer.subset_splits=[test]")  # would change a run's id, not what it measures
