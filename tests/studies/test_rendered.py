"""A study's rendered outputs are whole or not at all, and tied to the collection they were drawn from: a render
killed mid-way leaves the old outputs; a kill between its renames, a collect without a render and an edited output
are each refused by verify and by the report until the study is rendered again."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from bn_study.claims import verdicts
from bn_study.cli import studies as cli
from bn_study.cli import verify
from bn_study.render import outputs as rendered
from bn_study.studies import registry, report
from bn_study.sweep import ownership
from bn_study.tables import collect
from tests.conftest import REPO

STUDY = "input_bn"  # a small committed study: its tables re-render in a few seconds


@pytest.fixture
def results(tmp_path):
    shutil.copytree(REPO / "results" / STUDY, tmp_path / STUDY)
    return tmp_path


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _render(results) -> int:
    return cli.main(["render", STUDY, "--results", str(results)])


def _problems(folder) -> list[str]:
    return verify.check(folder).problems


def test_the_committed_outputs_are_those_rendered_from_the_committed_tables(results):
    assert rendered.check(results / STUDY) >= 4 and not _problems(results / STUDY)


def test_a_render_killed_midway_leaves_the_old_outputs_whole(results, monkeypatch, capsys):
    before = _files(results / STUDY)
    study = registry.get(STUDY)

    def killed(folder, out):
        (out / f"{STUDY}.png").write_bytes(b"half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "get", lambda name: dataclasses.replace(study, render=killed))
    assert _render(results) == 130
    assert capsys.readouterr().err.splitlines() == [
        "bn-study-studies: interrupted: nothing half-written is left; rerun the same command"
    ]
    assert _files(results / STUDY) == before and not _problems(results / STUDY)  # no staging folder left either


def test_a_collect_without_a_render_and_a_render_killed_between_its_renames_are_refused(results, monkeypatch, capsys):
    folder = results / STUDY
    runs, curves = collect.load(folder)
    collect.write(collect.Collected(runs, curves), folder)  # collected again: another collection.json
    assert _problems(folder) == [
        f"{folder}: its figures and verdicts were drawn from another collection than the tables beside them "
        "(collected again since?); render the study again"
    ]
    with pytest.raises(rendered.Stale):
        report.text(results)
    assert (
        cli.main(["report", "--results", str(results)]) == 1
        and "drawn from another collection" in capsys.readouterr().err
    )

    real, calls = rendered.os.replace, []

    def dying(src, dst):  # killed after the first output is renamed into the study folder, before the second
        if Path(dst).parent == folder:
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(rendered.os, "replace", dying)
    assert _render(results) == 130
    monkeypatch.undo()

    assert _problems(folder) == [
        f"{folder}: a render was killed while it renamed its outputs into place; render the study again"
    ]

    assert _render(results) == 0  # rendering again repairs it
    assert not _problems(folder) and verdicts.read(folder)["collection"] == rendered.collection_digest(folder)


def test_a_collection_short_of_the_plan_is_not_rendered(results, capsys):
    """Tables of fewer seeds than the study declares (a variant, or unfinished sweeps) never replace its results."""
    folder = results / STUDY
    runs, curves = collect.load(folder)
    fewer = runs[runs["seed"] != 4]
    collect.write(collect.Collected(fewer, curves[curves["run_id"].isin(fewer["run_id"])]), folder)
    before = _files(folder)
    assert _render(results) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        len(err) == 1
        and f"{STUDY}: its 20 collected runs lack 5 of its 25 planned runs (e.g. " in err[0]
        and "seed=4" in err[0]
    ), err
    assert _files(folder) == before


def test_a_killed_renders_staging_folder_is_unfinished_work_not_a_problem(results):
    stage = results / STUDY / ".render-x1y2.tmp"
    stage.mkdir()
    (stage / "verdicts.json").write_text("{}")
    found = verify.check(results / STUDY)
    assert (
        not found.problems
        and f"{stage}: left by a write that was killed; safe to delete (the folder's next owner removes it)"
        in found.unfinished
    )


def test_an_edited_output_is_refused(results):
    summary = results / STUDY / "summary.md"
    summary.write_text(summary.read_text().replace("holds", "contradicted"))
    assert _problems(results / STUDY) == [
        f"{summary}: not what was rendered (a render torn by a crash, or edited); render the study again"
    ]


def test_a_study_folder_another_process_owns_is_refused_in_one_line(results, capsys):
    import os

    with ownership.owned(results / STUDY, "test"):
        assert _render(results) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"bn-study-studies: error: results folder {results / STUDY}: in use by another bn-study process (pid {os.getpid()}"
    )


def test_the_two_fig1_studies_quote_each_other_and_a_render_brings_both_up_to_date(tmp_path):
    """fig1's summary sets its stability verdict beside fig1_second_lr's (and checks its rate against its pilot's tables),
    and fig1_second_lr's beside fig1's: collecting and rendering one leaves the other quoting what it no longer says, until
    the render of the first renders the other again."""
    for name in ("fig1", "fig1_second_lr", "fig1_pilot"):
        shutil.copytree(REPO / "results" / name, tmp_path / name)
    runs, curves = collect.load(tmp_path / "fig1_second_lr")
    collect.write(collect.Collected(runs, curves), tmp_path / "fig1_second_lr")  # collected again
    with pytest.raises(
        rendered.Stale,
        match="its summary quotes fig1_second_lr/collection.json, which has changed since it was rendered",
    ):
        rendered.check(tmp_path / "fig1")
    assert cli.main(["render", "fig1_second_lr", "--results", str(tmp_path)]) == 0
    assert not verify.check(tmp_path).problems
    report.text(tmp_path)  # refuses stale outputs: none

    quoted = tmp_path / "fig1_second_lr" / "verdicts.json"
    quoted.write_text(quoted.read_text().replace('"holds"', '"contradicted"'))
    with pytest.raises(
        rendered.Stale, match="its summary quotes fig1_second_lr/verdicts.json, which has changed since it was rendered"
    ):
        rendered.check(tmp_path / "fig1")
