"""The notebooks: each .ipynb is its .py pair with no outputs, and each executes (papermill) against a
small fixture results folder, sliced from the committed studies by tests/fixtures/make_results.py."""

from __future__ import annotations

import re

import jupytext
import nbformat
import papermill
import pytest
import yaml
from conftest import REPO

NOTEBOOKS = REPO / "notebooks"
FIXTURE = REPO / "tests" / "fixtures" / "results"
PAIRS = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
# The study each notebook is pointed at in the fixture, and the parameters it is run with.
PARAMETERS = {
    "fig1": {"study": "fig1"},
    "grid": {"study": "keras_blog"},
    "compare_runs": {
        "study": "placement",
        "where": {"data.name": "mnist", "model.activation": "relu", "model.bn": ["none", "after"]},
        "by": ["model.bn"],
        "split": "probe",
        "metric": "p50",
    },
}


def test_every_notebook_is_a_stripped_pair_with_a_parameters_cell():
    assert sorted(PARAMETERS) == PAIRS
    for name in PAIRS:
        script = jupytext.read(NOTEBOOKS / f"{name}.py")
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert [c.source for c in notebook.cells] == [c.source for c in script.cells], (
            f"{name}.ipynb is out of sync: make notebooks-sync"
        )
        for cell in notebook.cells:
            assert not cell.get("outputs") and not cell.get("execution_count"), (
                f"{name}.ipynb has outputs: make notebooks-sync"
            )
        assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells), (
            f"{name}: no cell tagged parameters"
        )


@pytest.mark.parametrize("name", PAIRS)
def test_notebook_executes_against_the_fixture(name, tmp_path):
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        NOTEBOOKS / f"{name}.ipynb",
        out,
        parameters={"results": str(FIXTURE), **PARAMETERS[name]},
        kernel_name="python3",
        cwd=str(REPO),
        progress_bar=False,
    )
    executed = nbformat.read(out, as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} drew no figure"


def test_the_documented_papermill_mapping_runs_as_shown(tmp_path):
    """docs/notebooks.md's `-y` example, parsed as papermill parses it, executes against the fixture."""
    name, given = re.search(
        r"papermill notebooks/(\w+)\.ipynb out\.ipynb -y \"([^\"]+)\"", (REPO / "docs" / "notebooks.md").read_text()
    ).groups()
    papermill.execute_notebook(
        NOTEBOOKS / f"{name}.ipynb",
        tmp_path / "out.ipynb",
        parameters={"results": str(FIXTURE), **yaml.safe_load(given)},  # the notebook's own defaults otherwise
        kernel_name="python3",
        cwd=str(REPO),
        progress_bar=False,
    )
