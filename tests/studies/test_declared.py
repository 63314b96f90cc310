"""Studies declared in YAML files (bn_study.studies.declaration): every one the package holds composes and its claims
check against its planned runs, hashing as the modules they replaced did; a file's bad input is one line naming the key,
exit 2, before any run; a tiny file study runs end to end (slow)."""

import functools
import json
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import yaml

from bn_study.claims import ledger, verdicts
from bn_study.cli import studies as cli
from bn_study.studies import declaration, registry
from bn_study.studies.registry import Version
from tests.conftest import REPO

TINY = REPO / "tests" / "fixtures" / "studies" / "tiny.yaml"
PACKAGED = sorted(registry.DECLARED.glob("*.yaml"))
# The hashes the claims of the studies that became files had as modules (results/ledger.jsonl registers them so).
AS_MODULES = {
    "input_bn": {"input_bn.feature": "d75fe520c81db8e8", "input_bn.scalar": "e35c21fd46ef8571"},
    "init_scale": {
        "init_scale.trainable_range": "23093d3e677de029",
        "init_scale.trainable_range_relative": "cdc8ad91bf62653c",
    },
    "batch_size": {"batch_size.small_hurts_bn": "d06eb1d7f2730b46", "batch_size.renorm_helps": "22e7fa835945423f"},
}


def test_the_package_declares_studies_in_files_and_the_registry_finds_them():
    assert len(PACKAGED) >= 3
    for path in PACKAGED:
        study = registry.studies()[declaration.load(path).name]
        assert (
            study.declared is not None and study.declared.path == path and study.render.__module__.endswith("generic")
        )


@pytest.mark.parametrize("path", PACKAGED, ids=[p.stem for p in PACKAGED])
@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_every_study_file_composes_and_its_claims_and_arms_check(path, quick):
    study = declaration.load(path)
    planned = cli.check(study, Version(quick=quick))
    for arm in study.declared.arms:
        assert len(cli.plan.claims.select(planned, arm.where)) > 0, arm.name


@pytest.mark.parametrize("name", sorted(AS_MODULES))
def test_a_study_that_became_a_file_keeps_its_claims_hashes(name):
    assert ledger.current_hashes({name: registry.studies()[name]})[name] == AS_MODULES[name]


BAD = [
    ({"claims": [{"direction": "sideways"}]}, "claims[0].direction: 'sideways'; allowed: higher, lower, not_lower"),
    ({"claims": [{"metric": {"kind": "finale"}}]}, "claims[0].metric.kind: 'finale'; allowed: final, at,"),
    (
        {"claims": [{"metric": {"kind": "final", "nam": "x"}}]},
        "claims[0].metric.nam: unknown key; allowed: kind, split, name, grid",
    ),
    ({"claims": [{"a": "aftr"}]}, "claims[0].a: 'aftr'; allowed: before, after"),
    ({"claims": [{"margin": "0.01"}]}, "claims[0].margin: must be a number, not '0.01'"),
    ({"claims": [{"margin": True}]}, "claims[0].margin: must be a number, not True"),
    ({"armz": {}}, "armz: unknown key; allowed: name, title,"),
    (
        {"arms": {"before": {"where": {"model.bn": "none"}}}},
        "arms.before.where: model.bn=none matches none of the planned runs",
    ),
    ({"arms": {"before": {"where": {"model.bnn": "before"}}}}, "arms.before.where: no column model.bnn; the runs have"),
    (
        {"name": "fig1", "claims": [{"id": "fig1.after"}]},
        "name: fig1 is the results folder of the registered study fig1;",
    ),
    (
        {"name": "placement_quick", "claims": [{"id": "placement_quick.after"}]},
        "name: placement_quick is the results folder of the registered study placement; choose another name",
    ),
    (
        {"sweeps": [{"name": "g", "quick": {"trainer.stepz": 1}}]},
        "sweeps[0].quick.trainer.stepz: changes a key its set or",
    ),
    (
        {"sweeps": [{"name": "placement"}]},
        "sweeps[0]: placement is the results folder of the registered study placement",
    ),
    (
        {"sweeps": [{"name": "placement_circles"}]},
        "sweeps[0]: placement_circles is the results folder of the experiment",
    ),
    ({"claims": [{"b": "after"}]}, "claims[0].b: after is side a too: a claim compares two arms"),
    ({"claims": [{"a": ["after"]}]}, "claims[0].a: ['after']; allowed: before, after"),
    ({"claims": [{"metric": {"kind": ["final"]}}]}, "claims[0].metric.kind: ['final']; allowed: final,"),
    ({"claims": [{"metric": {"kind": "at"}}]}, "claims[0].metric.step: missing: at needs it"),
    ({"claims": [{"id": "other.after"}]}, "claims[0].id: 'other.after' must be tiny_question.<name>"),
    ({"arms": {"before": {"where": {}}}}, "arms.before.where: must select runs by at least one config column"),
    (
        {"arms": {"before": {"where": {"model.bn": "before"}, "color": "bleu"}}},
        "arms.before.color: 'bleu' is not a colour",
    ),
    (
        {"arms": {"before": {"where": {"data.name": "mnist5k"}}}},
        "claims[0].b: its arm selects 2 runs per seed (they differ in model.bn)",
    ),
    ({"sweeps": [{"set": {"quick": True}}]}, "sweeps[0].set.quick: not a file's to set"),
    ({"sweeps": [{"set": {"study": "fig1"}}]}, "sweeps[0].set.study: not a file's to set"),
    ({"sweeps": [{"set": {"hydra.launcher.x": 1}}]}, "sweeps[0].set.hydra.launcher.x: not a file's to set"),
    ({"sweeps": [{"grid": {"data": ["mnist5k", "circles"], "seed": [0, 1]}}]}, "sweeps[0].grid.data: a study runs one"),
    ({"figure": {"x": "model.bnn"}}, "figure.x: no column model.bnn; the runs have"),
    ({"figure": {"metric": "acuracy"}}, "figure: no run logs test/acuracy; they log"),
    (
        {"sweeps": [{"set": {"model": "cnnn", "trainer.steps": 200, "trainer.eval_every": 50}}]},
        "sweeps[0] (tiny_grid): model=cnnn: unknown option; choose one of: cnn,",
    ),
]


def _merged(base: dict, change: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in change.items():
        if key == "claims":
            out["claims"][0].update(value[0])
        elif key == "arms":
            out["arms"].update(value)
        elif key == "sweeps":
            out["sweeps"][0].update(value[0])
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("change,line", BAD, ids=[line.split(":")[0] for _, line in BAD])
def test_a_bad_study_file_is_one_line_naming_the_key_and_nothing_runs(tmp_path, capsys, change, line):
    path = tmp_path / "question.yaml"
    path.write_text(yaml.safe_dump(_merged(yaml.safe_load(TINY.read_text()), change), sort_keys=False))
    code = cli.main(["run", str(path), "--quick", "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("bn-study-studies: error: ") and f"question.yaml: {line}" in err, err
    assert not (tmp_path / "results").exists()


def test_a_key_given_twice_is_refused_not_silently_the_last(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text(TINY.read_text().replace("    margin: 0.01\n", "    margin: 0.01\n    margin: 0.5\n"))
    assert cli.main(["check", str(path)]) == 2
    assert capsys.readouterr().err == f"bn-study-studies: error: {path} (line 24): not YAML: key 'margin' given twice\n"


def test_a_file_that_is_not_yaml_or_not_there_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text("name: x\n  bad: [\n")
    assert cli.main(["check", str(tmp_path / "broken.yaml")]) == 2
    assert cli.main(["check", str(tmp_path / "missing.yaml")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"bn-study-studies: error: {tmp_path / 'broken.yaml'} (line 2): not YAML: mapping values are not allowed here",
        f"bn-study-studies: error: {tmp_path / 'missing.yaml'}: No such file or directory",
    ]


def test_an_inline_grid_plans_the_runs_the_command_line_would(tmp_path):
    study = declaration.load(TINY)
    planned = cli.check(study, Version(quick=True))
    assert sorted(zip(planned["model.bn"], planned["seed"])) == [
        ("after", 0),
        ("after", 1),
        ("before", 0),
        ("before", 1),
    ]
    assert set(planned["trainer.steps"]) == {20} and set(planned["model.activation"]) == {"sigmoid"}
    assert set(planned["data.name"]) == {"mnist5k"} and set(planned["optimizer.name"]) == {"momentum"}  # placement's
    assert len(cli.check(study, Version())) == 10


@pytest.mark.slow
def test_a_tiny_study_file_runs_is_judged_and_drawn_end_to_end(tmp_path, monkeypatch, capsys):
    lab = tmp_path / "lab"  # the lab's repository, which holds the question
    lab.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "lab@example.org"], ["config", "user.name", "lab"]):
        _git(lab, *args)
    question = lab / "tiny.yaml"
    question.write_text(TINY.read_text())
    _git(lab, "add", "tiny.yaml")
    _git(lab, "commit", "-qm", "the question")
    time.sleep(1.1)  # a commit's time is in whole seconds: a sweep started within the same second is not after it
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(question), "--quick"]) == 0, capsys.readouterr().err
    folder = tmp_path / "results" / "tiny_question_quick"
    names = {p.name for p in folder.iterdir()}
    assert {"tiny_question.png", "tiny_question.pdf", "tiny_question.csv", "claims.png", "summary.md"} <= names
    (record,) = json.loads((folder / "verdicts.json").read_text())["claims"]
    assert record["id"] == "tiny_question.after" and record["outcome"] in verdicts.OUTCOMES
    assert not record["post_hoc"]  # committed before its runs
    assert "tiny_question.after" in (folder / "summary.md").read_text()
    # a margin changed once the runs were seen is post hoc, its runs made again or not: its cells ran before the
    # commit that declares it (the first sweep's runs, no longer in the collection, still count)
    question.write_text(TINY.read_text().replace("margin: 0.01", "margin: 0.02"))
    _git(lab, "commit", "-qam", "a wider margin, after a look")
    assert cli.main(["run", str(question), "--quick"]) == 0
    (again,) = json.loads((folder / "verdicts.json").read_text())["claims"]
    assert again["post_hoc"] and again["median_difference"] == record["median_difference"]


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_a_study_files_claims_are_registered_by_the_files_own_git_history(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "lab@example.org")
    _git(repo, "config", "user.name", "lab")
    path = repo / "question.yaml"
    path.write_text(TINY.read_text())
    _git(repo, "add", "question.yaml")
    _git(repo, "commit", "-qm", "the question, before its runs")
    study = declaration.load(path)
    (claim,) = study.claims
    planned = cli.check(study, Version(quick=True))
    committed = datetime.fromisoformat(_git(repo, "show", "-s", "--format=%cI", "HEAD"))

    def judged(book, hours: float) -> dict:
        started = (committed + timedelta(hours=hours)).astimezone(timezone.utc)
        runs = planned.assign(
            folder=f"results/tiny_grid/sweeps/{started:%Y-%m-%d_%H-%M-%S}_tiny_question/0", data_used="mnist5k"
        )
        digest = ledger.current_hashes({study.name: study})[study.name][claim.id]
        return ledger.assess(book, study.name, claim, digest, ledger.as_trained(runs), repo)

    book, found = ledger.of_file(path, study.name, functools.partial(declaration.hashes_of_text, path))
    assert found == repo and not judged(book, 1)["post_hoc"] and judged(book, -1)["post_hoc"]
    assert judged(book, 1)["registered_commit"] == _git(repo, "rev-parse", "HEAD")
    # a new margin is a new declaration: registered from its own commit on, not from the first one
    path.write_text(TINY.read_text().replace("margin: 0.01", "margin: 0.02"))
    _git(repo, "commit", "-qam", "a wider margin")
    study = declaration.load(path)
    (claim,) = study.claims
    book, _ = ledger.of_file(path, study.name, functools.partial(declaration.hashes_of_text, path))
    assert len(book.entries) == 2 and judged(book, 1)["registered_commit"] == _git(repo, "rev-parse", "HEAD")
    # a cell another study ran before the file was committed was seen: post hoc, matched on the data it trained on
    earlier = (committed - timedelta(hours=1)).astimezone(timezone.utc)
    other = planned.assign(
        folder=f"results/other/sweeps/{earlier:%Y-%m-%d_%H-%M-%S}_other/0",
        **{"data.name": "mnist"},
        data_used="mnist5k",
    )
    book, _ = ledger.of_file(path, study.name, functools.partial(declaration.hashes_of_text, path), [other])
    assert judged(book, 1)["post_hoc"] and judged(book, 1)["first_run_at"] == f"{earlier:%Y-%m-%dT%H:%M:%S}+00:00"
    # a file git does not hold registers nothing: its claims are judged post hoc
    loose = tmp_path / "loose.yaml"
    loose.write_text(TINY.read_text())
    assert ledger.of_file(loose, study.name, functools.partial(declaration.hashes_of_text, loose))[0].entries == []


def test_make_study_needs_a_file():
    done = subprocess.run(["make", "--no-print-directory", "study"], cwd=REPO, capture_output=True, text=True)
    # make adds its own line about the target that failed
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "make study: FILE=path/to/study.yaml is needed (docs/studies.md)"


def test_the_file_docs_studies_md_shows_is_a_study_that_checks(tmp_path):
    page = (REPO / "docs" / "studies.md").read_text()
    shown = page[page.index("```yaml\n") + len("```yaml\n") : page.index("```", page.index("```yaml\n") + 8)]
    path = tmp_path / "my_question.yaml"
    path.write_text(shown)
    planned = cli.check(declaration.load(path), Version())
    assert len(planned) == 10 and set(planned["model.activation"]) == {"relu"}


def test_the_worked_examples_numbers_in_the_docs_are_its_committed_verdicts():
    """docs/studies.md quotes results/cnn_tanh/: each claim's row, its registration and the run count, as judged."""
    page = (REPO / "docs" / "studies.md").read_text()
    judged = verdicts.read(REPO / "results" / "cnn_tanh")["claims"]
    rows = re.findall(
        r"^\| [^|]+ \| ([+-]\d\.\d{4}) \[([+-]\d\.\d{4}), ([+-]\d\.\d{4})\] \| (\d+) \| (\w+) \|$", page, re.M
    )
    assert [(float(m), float(lo), float(hi), int(n), o) for m, lo, hi, n, o in rows] == [
        (round(r["median_difference"], 4), round(r["low"], 4), round(r["high"], 4), r["n"], r["outcome"])
        for r in judged
    ]
    commits = {r["registration"]["registered_commit"][:7] for r in judged}
    assert not any(r["post_hoc"] for r in judged) and f"registered at {commits.pop()}, before its runs" in page
    runs = pd.read_csv(REPO / "results" / "cnn_tanh" / "runs.csv")
    assert f"{len(runs)} runs, {runs['wall_seconds'].sum() / 3600:.2f} h of run time" in page
