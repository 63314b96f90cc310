"""The unit layer runs without TensorFlow: a test here that imports it, at collection (a module-level import) or while
it runs, fails."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_finish(session):
    only_unit = session.items and all(HERE in Path(item.path).parents for item in session.items)
    if only_unit and "tensorflow" in sys.modules:
        raise pytest.UsageError("tests/unit imported TensorFlow while collecting: a unit test module must not")


@pytest.fixture(autouse=True)
def _without_tensorflow():
    before = "tensorflow" in sys.modules  # another layer's test in this process may have imported it: then unknowable
    yield
    if not before and "tensorflow" in sys.modules:
        pytest.fail("imported TensorFlow: a unit test must not (move it to tests/keras or tests/e2e)")
