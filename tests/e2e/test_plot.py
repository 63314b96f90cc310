"""Median curves never pool different experiments, and `bn-study-plot` draws any collected runs from the command line."""

import shutil

import pytest

from bn_study.cli import plot
from bn_study.studies.common import StudyError, Tables, median_curves
from bn_study.tables import collect
from tests.conftest import REPO

PLACEMENT = REPO / "results" / "placement"  # MNIST MLPs evaluated every 250 steps, and the circles network every 16


def test_a_median_over_runs_of_other_data_networks_or_grids_is_refused_naming_what_differs():
    tables = Tables.load(PLACEMENT)
    with pytest.raises(StudyError) as refused:
        median_curves(tables, ["model.bn"])
    assert "data_used (circles, mnist5k)" in str(refused.value) and "trainer.eval_every (16, 250)" in str(refused.value)
    mnist = tables.select({"data.name": "mnist"})
    with pytest.raises(StudyError, match=r"model.activation \(relu, sigmoid, tanh\)"):
        median_curves(mnist, ["model.bn"])  # three networks, one per activation
    curves = median_curves(mnist, ["model.activation", "model.bn"])
    assert set(curves["step"] % 250) == {0} and not curves.empty


def test_a_where_that_arrives_as_a_string_is_refused_with_the_form_that_works():
    with pytest.raises(TypeError, match="-y"):
        collect.select(Tables.load(PLACEMENT).runs, "{}")


def test_plot_draws_a_collected_folder_and_refuses_in_one_line(tmp_path, capsys):
    shutil.copytree(
        REPO / "results" / "input_bn", tmp_path / "input_bn", ignore=shutil.ignore_patterns("*.png", "*.pdf")
    )
    assert plot.main(["input_bn", "--results", str(tmp_path), "--by", "model.input_bn", "data.standardize"]) == 0
    assert (tmp_path / "input_bn" / "plot_test_accuracy.png").stat().st_size > 0
    capsys.readouterr()
    assert plot.main(["nothing_here", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bn-study-collect" in err
    assert plot.main([str(PLACEMENT), "--by", "model.bn", "--out", str(tmp_path / "p.png")]) == 2
    assert "data_used" in capsys.readouterr().err and not (tmp_path / "p.png").exists()
