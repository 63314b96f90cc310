"""The datasets' declared specs (what every job of a sweep is checked against before any loads) match what loads."""

import pytest

from bn_study import data as data_lib
from bn_study.config import DataName
from tests.conftest import compose_run


@pytest.mark.parametrize("name", ["mnist5k", "digits", "circles"])  # those that load offline; the rest need a download
def test_each_dataset_loads_as_its_spec_declares(name):
    loaded = data_lib.load(compose_run(f"data={name}").data)
    assert loaded.name == name and loaded.spec == data_lib.SPECS[DataName(name)]
