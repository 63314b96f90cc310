"""The notebooks: each .ipynb is its .py pair with no outputs, and each executes (papermill) against a
small fixture results folder, sliced from the committed studies by tests/fixtures/make_results.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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


def _p_value(text: str):
    """A `-p` value as papermill reads it: None, a boolean, a number, else the string itself."""
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _documented() -> list[tuple[str, dict]]:
    """Each papermill command docs/notebooks.md shows: the notebook and its parameters, parsed as papermill parses
    them (`-p` values by its own type rules, `-y` as YAML)."""
    found = []
    for command in re.findall(
        r"`\.venv/bin/papermill (notebooks/\w+\.ipynb [^`]+)`", (REPO / "docs" / "notebooks.md").read_text()
    ):
        words = shlex.split(command)
        parameters, i = {}, 2
        while i < len(words):
            if words[i] == "-p":
                parameters[words[i + 1]] = _p_value(words[i + 2])
                i += 3
            else:
                assert words[i] == "-y", command
                parameters.update(yaml.safe_load(words[i + 1]))
                i += 2
        found.append((Path(words[0]).stem, parameters))
    return found


@pytest.mark.parametrize("name, parameters", _documented(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_documented_papermill_command_runs_as_shown(tmp_path, name, parameters):
    """Against the fixture, with the notebook's own defaults for what the command does not set."""
    papermill.execute_notebook(
        NOTEBOOKS / f"{name}.ipynb",
        tmp_path / "out.ipynb",
        parameters={"results": str(FIXTURE), **parameters},
        kernel_name="python3",
        cwd=str(REPO),
        progress_bar=False,
    )
