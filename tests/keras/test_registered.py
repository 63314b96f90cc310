"""Every registered dataset that can be had here loads as its spec declares (the spec is what every job of a sweep
is checked against before anything loads; some loaders read keras.datasets), and every registered probe names a class
that starts and measures."""

import importlib

import pytest

from bn_study.data import datasets
from bn_study.probes.registry import PROBES
from tests.conftest import compose_run


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_a_dataset_loads_as_its_spec_declares(name):
    cfg = compose_run(f"data={name}", "data.strict=true")
    try:
        loaded = datasets.load(cfg.data)
    except datasets.DataUnavailable:
        pytest.skip(f"data={name} needs a download or a cached copy here")
    assert loaded.name == name and loaded.spec == datasets.spec(name)


@pytest.mark.parametrize("flag", list(PROBES))
def test_a_probe_names_a_class_that_starts_and_measures(flag):
    module, _, cls = PROBES[flag].measured_by.partition(":")
    probe = getattr(importlib.import_module(module), cls)
    assert callable(probe.start) and callable(probe.measure)
