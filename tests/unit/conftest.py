"""The unit layer runs without TensorFlow: a test here that imports it (directly or through what it calls) fails."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _without_tensorflow():
    before = "tensorflow" in sys.modules  # another layer's test in this process may have imported it: then unknowable
    yield
    if not before and "tensorflow" in sys.modules:
        pytest.fail("imported TensorFlow: a unit test must not (move it to tests/keras or tests/e2e)")
