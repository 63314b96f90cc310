"""The study registry: every registered study composed and checked (claims against its planned runs, quick
smaller than full), bad input to the study runner refused before any run, the committed verdicts and
README numbers reproducible from the committed tables, and one study end to end in its quick version."""

import dataclasses
import functools
import json
import math
import re
import shlex
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bn_study.claims import Claim, Final, Side, verdicts
from bn_study.cli import studies as cli
from bn_study.render import outputs as rendered
from bn_study.studies import forest, plan, questions, registry, report
from bn_study.studies.registry import Version
from bn_study.tables import collect
from tests.conftest import REPO

STUDIES = list(registry.studies())
RESULTS = REPO / "results"


def _size(planned: pd.DataFrame) -> float:
    """Training steps times batch size, over every planned run: what a study costs."""
    return float((planned["trainer.steps"] * planned["trainer.batch_size"]).sum())


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_composes_and_its_claims_match_its_planned_runs(name):
    study = registry.get(name)
    assert study.sweeps and all((REPO / "experiments" / f"{s}.yaml").is_file() for s in study.sweeps)
    full, quick = (
        cli.check(study, Version()),
        cli.check(study, Version(quick=True)),
    )  # ClaimError if a claim names what the runs lack
    assert _size(quick) < _size(full) / 10, "the quick version must be much smaller than the full one"
    assert (full["quick"] == False).all() and (quick["quick"] == True).all()  # noqa: E712
    if study.claims:
        assert (
            full.groupby([c for c in full.columns if c not in ("seed", *plan.LOGGED)], dropna=False)["seed"]
            .nunique()
            .min()
            >= 5
        ), "full mode: >= 5 seeds"
    assert len({c.id for c in study.claims}) == len(study.claims)


# What only the ledger may say of a claim: whether it was registered before its runs.
REGISTRATION_STATUS = re.compile(
    r"\bpost[ -]hoc\b|declared (?:anew )?(?:before|after)|registered before|before any\b|before (?:its|the|their) runs",
    re.I,
)


@pytest.mark.parametrize("name", STUDIES)
def test_no_hand_written_text_of_a_study_says_whether_a_claim_was_registered(name):
    study = registry.get(name)
    texts = [(f"{name}.{f.name}", getattr(study, f.name)) for f in dataclasses.fields(study)]
    texts += [(f"{c.id}.{f.name}", getattr(c, f.name)) for c in study.claims for f in dataclasses.fields(c)]
    said = [
        f"{where}: {m.group(0)!r}"
        for where, text in texts
        if isinstance(text, str)
        for m in REGISTRATION_STATUS.finditer(text)
    ]
    assert said == [], "registration is the ledger's to say (verdicts.json's registration and post_hoc)"


def test_a_sweep_a_study_runs_that_refuses_its_input_is_its_one_line(tmp_path, monkeypatch, capsys):
    class Refusing:  # a sweep that printed its one error line and exited 2
        def __init__(self, command, env, **_):
            pass

        def wait(self):
            return 2

    monkeypatch.setattr(cli.subprocess, "Popen", Refusing)
    assert cli.main(["run", "input_bn", "--quick", "--results", str(tmp_path)]) == 2
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("bn-study-studies")]


def test_fig1_runs_ten_seeds():
    assert plan.planned(["fig1"])["seed"].nunique() >= 10


def test_unknown_study_and_malformed_claim_are_refused_before_any_run(tmp_path, monkeypatch, capsys):
    assert cli.main(["run", "nope", "--results", str(tmp_path)]) == 2
    assert "study=nope: unknown study; choose one of: fig1_pilot, fig1, fig1_second_lr" in capsys.readouterr().err
    bad = registry.Study(
        "bad",
        "t",
        "t",
        sweeps=("input_bn",),
        claims=(
            Claim(
                "bad.arm",
                "src",
                "s",
                Side("a", {"model.input_bn": "sideways"}),
                Side("b", {"model.input_bn": "none"}),
                Final(),
                "higher",
                0.01,
            ),
        ),
    )
    monkeypatch.setattr(registry, "studies", lambda: {"bad": bad})
    assert cli.main(["run", "bad", "--quick", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bn-study-studies: error: claims.bad.arm.a.where: model.input_bn=sideways matches none of the study's runs; "
        "it runs model.input_bn in {feature, none, scalar}"
    ]
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


@pytest.mark.parametrize("name", [s for s in STUDIES if (RESULTS / s / verdicts.VERDICTS).exists()])
def test_committed_verdicts_are_what_the_committed_tables_give(name):
    """Re-judging the committed tables must give the committed verdicts: a flipped direction, a zeroed
    statistic or an edited number in verdicts.json fails here."""
    study = registry.get(name)
    runs, curves = collect.load(RESULTS / name)
    committed = verdicts.read(RESULTS / name)["claims"]
    again = verdicts.judge_all(study.claims, runs, curves, plan.first_look(cli.check(study, Version())))
    assert [r["id"] for r in committed] == [c.id for c in study.claims], (
        "claims changed since the verdicts were written: make figures"
    )
    for old, new in zip(committed, again):
        assert old["outcome"] == new["outcome"], old["id"]
        for key in ("median_difference", "low", "high"):
            assert (math.isnan(old[key]) and math.isnan(new[key])) or old[key] == pytest.approx(new[key]), (
                old["id"],
                key,
            )


def test_readme_block_and_report_are_generated_from_the_committed_verdicts():
    text = (REPO / "README.md").read_text()
    assert all(block[0] in text for block in (report.RESULTS_BLOCK, report.STUDIES_BLOCK))
    assert report.with_blocks(text, RESULTS) == text, "README's generated blocks are stale: make report"
    assert (RESULTS / "REPORT.md").read_text() == report.text(RESULTS), "results/REPORT.md is stale: make report"


def test_the_verdict_diff_is_a_log_that_keeps_earlier_commits_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "verdict_diff", lambda results, repo, base: ["- `a.b` moved"])
    (tmp_path / report.VERDICT_DIFF).write_text(
        report.DIFF_HEAD + "\n## Against 0123456789ab\n\n- `x.y` moved earlier\n"
    )
    text = report.diff_log(tmp_path, REPO)
    assert "## Against 0123456789ab\n\n- `x.y` moved earlier\n" in text and text.count("## Against ") == 2
    assert text.endswith("- `a.b` moved\n")
    (tmp_path / report.VERDICT_DIFF).write_text(text)
    assert report.diff_log(tmp_path, REPO) == text  # this commit's section rewritten, not added again
    monkeypatch.setattr(report, "verdict_diff", lambda results, repo, base: [])
    assert report.diff_log(tmp_path, REPO).count("## Against ") == 1  # nothing differs from it now: its section goes
    assert report.diff_log(tmp_path, tmp_path) == text  # no git commit to compare with: the log is kept as it is


def test_the_verdict_diff_lists_a_registration_that_moved_as_well_as_an_outcome(tmp_path):
    folder = tmp_path / "results" / "input_bn"
    folder.mkdir(parents=True)
    committed = json.loads((RESULTS / "input_bn" / verdicts.VERDICTS).read_text())
    (folder / verdicts.VERDICTS).write_text(json.dumps(committed))
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "verdicts"], check=True)
    assert report.verdict_diff(tmp_path / "results", tmp_path) == []
    first = committed["claims"][0]
    first["post_hoc"] = not first.get("post_hoc", True)
    (folder / verdicts.VERDICTS).write_text(json.dumps(committed))
    (line,) = report.verdict_diff(tmp_path / "results", tmp_path)
    assert f"`{first['id']}` on input_bn: {first['outcome']}, as before; " in line
    assert ("registered -> post hoc" if first["post_hoc"] else "post hoc -> registered") in line


def test_the_verdict_diff_compares_with_the_last_committed_report(tmp_path):
    """A study's verdicts committed without a report are compared from the report before them, not from themselves."""
    results = tmp_path / "results"
    (results / "input_bn").mkdir(parents=True)
    committed = json.loads((RESULTS / "input_bn" / verdicts.VERDICTS).read_text())
    (results / "input_bn" / verdicts.VERDICTS).write_text(json.dumps(committed))
    (results / "REPORT.md").write_text("the report")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "a report"], check=True)
    reported = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    first = committed["claims"][0]
    first["outcome"] = next(o for o in verdicts.OUTCOMES if o != first["outcome"])
    (results / "input_bn" / verdicts.VERDICTS).write_text(json.dumps(committed))
    subprocess.run([*git, "commit", "-qam", "a study's verdicts, no report"], check=True)
    assert report.last_report(results, tmp_path) == reported
    text = report.diff_log(results, tmp_path)
    assert f"## Against {reported[:12]}" in text and f"`{first['id']}` on input_bn" in text


def test_every_committed_verdict_was_judged_by_this_engine():
    """An edit to the engine's sources (verdicts.ENGINE_SOURCES) re-judges every study: the committed verdicts must be
    the engine's own, not an older one's."""
    stale = [
        f.parent.name
        for f in sorted(RESULTS.glob("*/verdicts.json"))
        if json.loads(f.read_text())["engine"] != verdicts.ENGINE
    ]
    assert stale == [], (
        "judged by another engine: re-render them (make figures STUDY=... for each version), then make report"
    )


@pytest.mark.slow  # ~25 s: a study end to end, then the report across two versions
def test_input_bn_quick_end_to_end_with_report(tmp_path):
    results = tmp_path / "results"
    assert cli.main(["run", "input_bn", "--quick", "--results", str(results)]) == 0
    out = results / "input_bn_quick"
    for name in (
        "input_bn.png",
        "input_bn.pdf",
        "input_bn.csv",
        "summary.md",
        "runs.csv",
        "curves.parquet",
        "by_config.csv",
        "verdicts.json",
    ):
        assert (out / name).stat().st_size > 0, name
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 10 and sorted(runs["seed"].unique()) == [0, 1] and runs["quick"].all()
    assert {"git_commit", "git_dirty", "cpu", "isa_level", "threads", "val_accuracy"} <= set(runs.columns)
    # every run recorded the claims of its study as declared when it ran: in run.json, and one digest in runs.csv
    from bn_study.claims import ledger

    declared = ledger.current_hashes({"input_bn": registry.get("input_bn")})["input_bn"]
    record = json.loads(next(out.parent.glob("input_bn_quick/sweeps/*/*/run.json")).read_text())
    assert record["runtime"]["claims"] == declared and runs["claims_hash"].nunique() == 1
    assert runs["claims_hash"].iloc[0] == record["runtime"]["claims_hash"]
    judged = verdicts.read(out)["claims"]
    # two seeds give a range, never a CI, so every claim is inconclusive by rule
    assert [r["id"] for r in judged] == ["input_bn.feature", "input_bn.scalar"] and {r["outcome"] for r in judged} == {
        "inconclusive"
    }
    assert all(not r["is_ci"] and r["n"] == 2 for r in judged)
    summary = (out / "summary.md").read_text()
    assert (
        "| BN on raw inputs (feature) |" in summary
        and "`input_bn.feature`" in summary
        and "range of 2 seeds" in summary
    )

    # REPORT.md opens with the answer by question (every run study's claims), its figure of every claim, and lists the
    # studies not run as such.
    (results / "input_bn").symlink_to(out)
    written = report.build(results)
    text = written[0].read_text()
    assert "| `input_bn.feature` |" in text and "- **input_bn** (2 claims): [mnist5k](input_bn/summary.md)" in text
    assert "not reproduced yet: `make keras_blog` has not been run." in text
    assert (
        "0 holds, 0 contradicted, 0 negligible, 2 inconclusive of 2 judged" in text
        and "0 claims are judged on both" in text
    )
    assert results / report.FOREST in written and (results / report.FOREST).stat().st_size > 0


def test_the_report_sets_each_claim_side_by_side_on_both_datasets_and_lists_what_scale_changes(tmp_path):
    study = registry.get("input_bn")
    records = {}
    for version, outcomes in (
        (Version(), ("holds", "inconclusive")),
        (Version(data="fashion_mnist"), ("contradicted", "inconclusive")),
    ):
        folder = study.folder(tmp_path, version)
        folder.mkdir()
        base = verdicts.read(RESULTS / "input_bn")["claims"]
        records[version] = [{**r, "outcome": o} for r, o in zip(base, outcomes)]
        if version.data:  # the first claim's effect 0.5 lower on every seed there, the second's the same
            first = records[version][0]
            first["per_seed"] = {k: {**p, "d": p["d"] - 0.5} for k, p in first["per_seed"].items()}
        (folder / "collection.json").write_text("{}")  # what the outputs are tied to (rendered.json)
        with rendered.staged(folder, rendered.collection_digest(folder)) as out:
            verdicts.write("input_bn", records[version], out, ["mnist5k" if version.data is None else version.data])
            (out / "summary.md").write_text(f"# t\n\nbody of {folder.name}\n")
    (tmp_path / report.FINDINGS).write_text("A finding written by hand.")
    table = report.interactions(tmp_path)
    assert list(table["claim"]) == ["input_bn.feature", "input_bn.scalar"]
    assert list(table["excludes_zero"]) == [True, False] and table["difference"].tolist() == pytest.approx([-0.5, 0.0])
    text = report.text(tmp_path)
    assert "| mnist5k | Fashion-MNIST |" in text
    glance = next(line for line in text.splitlines() if line.startswith("| Where does BN go"))
    assert glance.endswith("(6 claims) | 1 holds, 1 inconclusive | 1 contradicted, 1 inconclusive |"), glance
    row = next(line for line in text.splitlines() if line.startswith("| `input_bn.feature` |"))
    assert [cell.split()[0] for cell in row.strip("| ").split(" | ")[-2:]] == ["holds", "contradicted"]
    differences = [
        line for line in text.split("## Where the dataset changes")[1].splitlines() if line.startswith("| `")
    ]
    assert (
        "2 claims are judged on both" in text
        and "(1 do)" in text
        and "1 of the 2 exclude zero" in text
        and [line.split(" |")[0] for line in differences] == ["| `input_bn.feature`"]
        and f"[{report.FINDINGS}]({report.FINDINGS})" in text
    )
    assert "Multiplicity: 4 verdicts" in text
    # each version's details are its own summary.md, linked, not pasted
    assert "body of input_bn_fashion_mnist" not in text and "(input_bn_fashion_mnist/summary.md)" in text


def test_every_declared_claim_answers_exactly_one_question():
    declared = [c.id for s in registry.studies().values() for c in s.claims]
    filed = [claim for question in questions.QUESTIONS for claim in question.claims]
    assert sorted(filed) == sorted(declared), "file each new claim under one question in bn_study/studies/questions.py"


@pytest.mark.parametrize(
    "direction, margin, effect, low, high, expected",
    [
        ("higher", 0.01, 0.02, 0.015, 0.03, (2.0, 1.5, 3.0)),  # holds: the interval right of +1
        ("lower", 0.097, -0.194, -0.291, -0.097, (2.0, 1.0, 3.0)),  # a ratio's log, claimed lower: flipped
        ("not_lower", 0.005, -0.001, -0.004, 0.002, (-0.2, -0.8, 0.4)),  # no worse: holds right of -1
    ],
)
def test_the_figure_of_every_claim_puts_each_in_margins_its_claimed_direction_right(
    direction, margin, effect, low, high, expected
):
    record = {"direction": direction, "margin": margin, "median_difference": effect, "low": low, "high": high}
    assert forest.in_margins(record) == pytest.approx(expected)


def test_the_answer_pages_stay_short():
    assert len((REPO / "README.md").read_bytes()) <= 10_000, "README.md over 10 KB: move detail to docs/"
    assert len((RESULTS / "REPORT.md").read_bytes()) <= 40_000, "results/REPORT.md over 40 KB"


@pytest.mark.slow
@pytest.mark.parametrize("name", [s for s in STUDIES if s != "input_bn"])
def test_study_quick_end_to_end(tmp_path, name):
    study = registry.get(name)
    assert cli.main(["run", name, "--quick", "--results", str(tmp_path)]) == 0
    out = study.folder(tmp_path, Version(quick=True))
    assert (out / "summary.md").stat().st_size > 0 and (out / verdicts.VERDICTS).exists()
    assert [r["id"] for r in verdicts.read(out)["claims"]] == [c.id for c in study.claims]


def test_figures_redraw_from_the_committed_tables_alone(tmp_path):
    """`make figures STUDY=fig1` on a fresh clone: only the committed tables (no run folders) are needed."""
    import shutil

    for name in ("fig1", "fig1_pilot"):
        shutil.copytree(
            RESULTS / name,
            tmp_path / name,
            ignore=shutil.ignore_patterns("sweeps", "runs", "*.png", "*.pdf", "summary.md", "verdicts.json"),
        )
    shutil.copy(RESULTS / "ledger.jsonl", tmp_path)  # the registrations the verdicts record
    # fig1's summary sets its stability verdict beside the second rate's (a committed verdicts.json)
    shutil.copytree(
        RESULTS / "fig1_second_lr", tmp_path / "fig1_second_lr", ignore=shutil.ignore_patterns("sweeps", "runs")
    )
    assert cli.main(["render", "fig1", "--results", str(tmp_path)]) == 0
    assert (tmp_path / "fig1" / "fig1.png").stat().st_size > 0
    assert verdicts.read(tmp_path / "fig1") == verdicts.read(RESULTS / "fig1")
    assert (tmp_path / "fig1" / "summary.md").read_text() == (RESULTS / "fig1" / "summary.md").read_text()


def test_quick_make_targets_run_the_quick_version():
    for target in ("fig1", "fig1-pilot", "keras_blog"):
        out = subprocess.run(["make", "-n", target, "QUICK=1"], cwd=REPO, capture_output=True, text=True).stdout
        assert "--quick" in out and "bn-study-studies run" in out, (target, out)


def test_a_study_version_on_another_dataset_has_its_own_folder_and_keeps_non_mnist_sweeps():
    fashion = Version(quick=True, data="fashion_mnist")
    study = registry.get("placement")
    assert study.folder(RESULTS, fashion) == RESULTS / "placement_fashion_mnist_quick"
    assert (
        registry.get("placement_fashion_mnist_quick") is study
        and Version.of_folder("placement_fashion_mnist_quick", "placement") == fashion
    )
    planned = cli.check(study, fashion)
    assert set(planned["data.name"]) == {"fashion_mnist", "circles"}  # the circles sweep stays on circles
    out = subprocess.run(
        ["make", "-n", "placement", "DATA=fashion_mnist"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert "bn-study-studies run placement --data fashion_mnist" in out


def test_a_study_version_at_a_training_size_has_its_own_folder_and_make_flag():
    small = Version(data="fashion_mnist", train_size=3600)
    study = registry.get("fig1")
    assert study.folder(RESULTS, small) == RESULTS / "fig1_fashion_mnist_n3600"
    assert (
        registry.get("fig1_fashion_mnist_n3600") is study
        and Version.of_folder("fig1_fashion_mnist_n3600", "fig1") == small
    )
    assert set(cli.check(study, small)["data.train_size"]) == {3600}
    out = subprocess.run(
        ["make", "-n", "fig1", "DATA=fashion_mnist", "TRAIN_SIZE=3600"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert "bn-study-studies run fig1 --data fashion_mnist --train-size 3600" in out
    assert cli.main(["check", "fig1", "--train-size", "0"]) == 2  # one line, exit 2


def test_a_study_resumes_its_newest_sweep_if_it_did_not_finish(tmp_path):
    study = registry.get("fig1")
    sweeps = tmp_path / "fig1" / "sweeps"
    for name, created, statuses in [
        ("2026-11-23_10-00-00_fig1", "2026-11-23T10:00:00", ["done", "done"]),
        ("2026-11-24_10-00-00_fig1", "2026-11-24T10:00:00", ["done", "running"]),
    ]:
        for job, status in enumerate(statuses):
            (sweeps / name / str(job)).mkdir(parents=True)
            (sweeps / name / str(job) / "run.json").write_text(
                json.dumps({"status": status, "overrides": [f"seed={job}"]})
            )
        (sweeps / name / "sweep.json").write_text(json.dumps({"created_at": created, "jobs": [["seed=0"], ["seed=1"]]}))
    assert cli._unfinished(sweeps, study) == sweeps / "2026-11-24_10-00-00_fig1"
    (sweeps / "2026-11-24_10-00-00_fig1" / "1" / "run.json").write_text(
        json.dumps({"status": "done", "overrides": ["seed=1"]})
    )
    # every job finished, but the study had not yet added its seeds and rendered: a rerun still resumes it
    assert cli._unfinished(sweeps, study) == sweeps / "2026-11-24_10-00-00_fig1"
    (sweeps / "2026-11-24_10-00-00_fig1" / cli.FINISHED).write_text("{}")
    assert cli._unfinished(sweeps, study) is None  # finished: the next run starts a new sweep
    assert cli._unfinished(tmp_path / "none" / "sweeps", study) is None
    # a sweep of added seeds is never the newest sweep of the study, and an unfinished one is resumed by its look
    seeds = sweeps / "2026-11-25_10-00-00_fig1_seeds10"
    (seeds / "0").mkdir(parents=True)
    (seeds / "0" / "run.json").write_text(json.dumps({"status": "running", "overrides": ["seed=5"]}))
    (seeds / "sweep.json").write_text(
        json.dumps({"created_at": "2026-11-25T10:00:00", "jobs": [["seed=5"]], "jobs_file": str(seeds / "jobs.json")})
    )
    assert collect.latest_sweep("fig1", tmp_path) == sweeps / "2026-11-24_10-00-00_fig1"
    assert collect.added_seeds(sweeps / "2026-11-24_10-00-00_fig1", "fig1") == [seeds]
    assert cli._unfinished(sweeps, study, "_seeds10") == seeds and cli._unfinished(sweeps, study, "_seeds20") is None


def test_fig1_and_fig1_second_lr_run_at_the_rates_their_pilot_of_the_same_version_picks(tmp_path, monkeypatch):
    from bn_study.studies import fig1_pilot
    from tests.conftest import compose_run

    # Each experiment file's rate is its rule's pick on the committed base pilot (a rerun pilot that moves fails this).
    for name in ("fig1", "fig1_second_lr"):
        study = registry.get(name)
        assert study.selected(RESULTS, Version()) == [
            f"optimizer.lr={compose_run(f'experiment={name}').optimizer.lr:g}"
        ]
        assert study.selected(tmp_path, Version(quick=True)) == []  # no pilot collected: the experiment's own rate
    commands = []

    class Sweep:  # a sweep that finishes at once
        def __init__(self, command, env, **_):
            commands.append(command)

        def wait(self):
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", Sweep)
    rule = fig1_pilot.Rule("t", lambda runs: 1.0)
    monkeypatch.setattr(fig1_pilot.collect, "load", lambda folder: (None, None))
    study, version = (
        registry.Study("fig1", "t", "t", sweeps=("fig1",), selected=lambda r, v: rule.rate(r, v, "fig1")),
        Version(quick=True, data="fashion_mnist"),
    )
    cli.run_sweeps(study, version, tmp_path, cli.selections(study, version, tmp_path))
    assert commands[0][4:8] == ["experiment=fig1", "quick=true", "data=fashion_mnist", "optimizer.lr=1"], commands


def test_the_second_rate_is_the_largest_other_rate_every_seed_without_bn_survives():
    from bn_study.studies import fig1_pilot

    runs = pd.DataFrame(
        [
            (lr, bn, seed, acc)
            for lr, accs in {0.5: (0.8, 0.8), 1: (0.9, 0.9), 2: (0.85, 0.1), 4: (0.85, float("nan"))}.items()
            for bn in ("none", "before")
            for seed, acc in enumerate(accs)
        ],
        columns=["optimizer.lr", "model.bn", "seed", "val_accuracy"],
    )
    assert fig1_pilot.selected_lr(runs)[0] == 1
    assert fig1_pilot.second_lr(runs) == 0.5  # 2 lost a seed to chance, 4 one to divergence
    assert fig1_pilot.second_lr(runs[runs["optimizer.lr"] == 1]) is None


def test_every_study_runs_after_the_studies_it_takes_a_selection_from():
    # `run --all` goes in registry order: the pilot must be collected before fig1 and fig1_second_lr ask it for their rates.
    assert STUDIES.index("fig1_pilot") < min(STUDIES.index("fig1"), STUDIES.index("fig1_second_lr"))


def test_claims_on_a_sweep_no_version_changes_are_left_out_of_the_dataset_comparison():
    """placement's circles sweep runs on circles in every version: its claims rest on the same runs on both sides."""
    placement, fig1 = registry.get("placement"), registry.get("fig1")
    by_id = {r["id"]: r for r in verdicts.read(RESULTS / "placement")["claims"]}
    assert report.same_data(placement, by_id["placement.circles_after_faster"])
    assert not report.same_data(placement, by_id["placement.sigmoid_after"])
    assert not report.same_data(fig1, verdicts.read(RESULTS / "fig1")["claims"][0])


def test_fig1_summary_sets_the_stability_verdict_at_both_rates_side_by_side():
    text = (RESULTS / "fig1" / "summary.md").read_text()
    for name in ("fig1", "fig1_second_lr"):
        spread = next(r for r in verdicts.read(RESULTS / name)["claims"] if r["id"].endswith("stable_spread"))
        assert f"(`{name}`)" in text and f"`stable_spread` {spread['outcome']}, {verdicts.effect(spread)}" in text


def test_a_version_folder_name_picks_that_version(tmp_path):
    """`render fig1_fashion_mnist` renders results/fig1_fashion_mnist/, not results/fig1/."""
    fig1 = registry.get("fig1")
    assert cli._version(["fig1_fashion_mnist"], [fig1], Version()) == Version(data="fashion_mnist")
    assert cli._version(["fig1"], [fig1], Version(quick=True)) == Version(quick=True)
    assert cli.main(["render", "fig1_fashion_mnist", "--quick", "--results", str(tmp_path)]) == 2


def test_the_rendered_summaries_and_report_cite_only_outcomes_the_committed_verdicts_hold():
    """Study modules write prose into their summaries too: any outcome it cites by claim id must be one held."""
    for path in [*sorted(RESULTS.glob("*/summary.md")), RESULTS / "REPORT.md"]:
        assert report.miscited(RESULTS, path.read_text()) == [], path


def test_the_hand_written_texts_cite_only_outcomes_the_committed_verdicts_hold():
    pages = "\n".join(page.read_text() for page in report.pages(REPO))
    assert report.MARKED_FINDINGS.search(pages), "the docs' hand-written findings are no longer marked"
    text = report.hand_written(RESULTS, pages)
    assert report.uncited(text) == [], (
        "an outcome stated without the claim it is of: cite it as `claim.id` holds on <data>"
    )
    assert report.miscited(RESULTS, text) == []
    assert report.uncited("`fig1.accuracy` holds on Fashion-MNIST at 3,600 images, (`fig1.faster`, contradicted)") == []
    assert len(report.uncited("at lr 4 it is inconclusive, as on mnist5k")) == 1
    record = verdicts.read(RESULTS / "fig1")["claims"][0]
    other = next(o for o in verdicts.OUTCOMES if o != record["outcome"])
    assert report.miscited(RESULTS, f"`{record['id']}` is {record['outcome']} on mnist5k") == []
    assert len(report.miscited(RESULTS, f"`{record['id']}` is {other} on mnist5k")) == 1
    assert (
        len(
            report.miscited(
                RESULTS,
                f"so `{record['id']}` ({other}, x2) and `fig1.no_such_claim` holds, and `curves.csv` holds, and "
                "`fig11.accuracy` holds",  # a mistyped study is no claim either
            )
        )
        == 3
    )


def test_an_edited_ledger_is_refused_in_one_line_before_anything_is_rendered(tmp_path, capsys):
    import shutil

    from bn_study.claims import ledger

    shutil.copytree(RESULTS / "input_bn", tmp_path / "input_bn", ignore=shutil.ignore_patterns("sweeps", "runs"))
    lines = (RESULTS / ledger.LEDGER).read_text().splitlines()
    lines[5] = lines[5].replace('"first_run_at":"20', '"first_run_at":"19')
    (tmp_path / ledger.LEDGER).write_text("\n".join(lines) + "\n")
    before = (tmp_path / "input_bn" / "verdicts.json").read_text()
    assert cli.main(["render", "input_bn", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ledger.jsonl line 6: edited" in err[0]
    assert (tmp_path / "input_bn" / "verdicts.json").read_text() == before
    # The same edit with the chain rebuilt around it: git does not back the entry, and render says so
    own = [{k: v for k, v in json.loads(line).items() if k not in ("prev", "sha")} for line in lines]
    (tmp_path / ledger.LEDGER).unlink()
    ledger.Ledger(tmp_path / ledger.LEDGER).append(own)
    if ledger.has_history(REPO):
        assert cli.main(["render", "input_bn", "--results", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "the run tables' history gives" in err[0], err
        assert (tmp_path / "input_bn" / "verdicts.json").read_text() == before


def _job(arm: str, seed: int) -> tuple[str, ...]:
    return ("experiment=t", f"+arm={arm}", f"seed={seed}")


def _fake_sweeps(monkeypatch, accuracy: dict, arms: str, claims) -> tuple:
    """A study of `arms` planned at 5 seeds whose sweeps are faked: each job's run has the accuracy `accuracy` gives its
    arm and seed. Returns the study, its plan, the tables of some jobs, and the job lists swept."""

    def tables(jobs):
        runs, curves = [], []
        for overrides in jobs:
            arm, seed = overrides[1].split("=")[1], int(overrides[2].split("=")[1])
            value = accuracy[arm](seed)
            runs.append({"run_id": f"{arm}{seed}", "arm": arm, "seed": seed, "status": "done", "test_accuracy": value})
            curves.append({"run_id": f"{arm}{seed}", "step": 10, "split": "test", "metric": "accuracy", "value": value})
        return collect.Collected(pd.DataFrame(runs), pd.DataFrame(curves), [], ["fake"])

    planned = pd.DataFrame([{"arm": arm, "seed": s, "job": _job(arm, s)} for arm in arms for s in range(5)])
    study = registry.Study("t", "t", "t", sweeps=("t",), claims=claims)
    swept = []

    def sweep(study, version, name, overrides, folder, launcher=()):
        swept.append(json.loads((folder / "jobs.json").read_text()))

    monkeypatch.setattr(cli, "_sweep", sweep)
    monkeypatch.setattr(cli.collect, "collect", lambda folder: tables(swept[-1]))
    monkeypatch.setattr(cli.plan, "base", lambda name, version: [f"experiment={name}"])
    return study, planned, tables, swept


SIDES = {arm: Side(arm, {"arm": arm}) for arm in "abcd"}


def test_add_seeds_runs_exactly_the_seeds_each_undecided_claims_next_look_needs_then_stops(tmp_path, monkeypatch):
    """Arms a, b, c, judged at 5 seeds: a - b is undecided (4 of 5 above the margin), so its cells get seeds 5-9 and it
    holds at 10 (9 of 10); c - b is decided at 5, so arm c gets no seed."""
    accuracy = {"a": lambda s: 0.5 if s == 2 else 0.6, "b": lambda s: 0.5, "c": lambda s: 0.7}
    claims = (
        Claim("t.ab", "s", "s", SIDES["a"], SIDES["b"], Final(), "higher", 0.05),
        Claim("t.cb", "s", "s", SIDES["c"], SIDES["b"], Final(), "higher", 0.05),
    )
    study, planned, tables, swept = _fake_sweeps(monkeypatch, accuracy, "abc", claims)
    out = study.folder(tmp_path)
    collect.write(tables(planned["job"]), out)
    assert cli.add_seeds(study, Version(), tmp_path, planned) == 10
    assert (
        sorted(map(tuple, swept[0])) == sorted(_job(arm, s) for arm in "ab" for s in range(5, 10)) and len(swept) == 1
    )
    runs, curves = collect.load(out)
    judged = {r["id"]: r for r in verdicts.judge_all(study.claims, runs, curves)}
    assert (judged["t.ab"]["outcome"], judged["t.ab"]["looks"]) == ("holds", [5, 10])
    assert (judged["t.cb"]["outcome"], judged["t.cb"]["looks"]) == ("holds", [5])
    assert cli.add_seeds(study, Version(), tmp_path, planned) == 0 and len(swept) == 1  # nothing left to ask for


def test_add_seeds_first_runs_the_planned_runs_a_collection_lacks_and_keeps_the_rest(tmp_path, monkeypatch):
    """A study that gained arm d (a sweep, planned at 10 seeds where the others have 5) since its runs were collected:
    its 10 seeds run, a, b and c's runs are kept."""
    accuracy = {"a": lambda s: 0.6, "b": lambda s: 0.5, "c": lambda s: 0.5, "d": lambda s: 0.7}
    claims = (Claim("t.db", "s", "s", SIDES["d"], SIDES["b"], Final(), "higher", 0.05),)
    study, planned, tables, swept = _fake_sweeps(monkeypatch, accuracy, "abcd", claims)
    planned = pd.concat([planned, pd.DataFrame([{"arm": "d", "seed": s, "job": _job("d", s)} for s in range(5, 10)])])
    out = study.folder(tmp_path)
    collect.write(tables(planned.loc[planned["arm"] != "d", "job"]), out)
    assert cli.add_seeds(study, Version(), tmp_path, planned) == 10
    assert sorted(map(tuple, swept[0])) == sorted(_job("d", s) for s in range(10)) and len(swept) == 1
    runs, _ = collect.load(out)
    assert len(runs) == 25 and plan.missing(runs, planned)[0] == 0


def test_a_second_interrupt_passes_on_to_the_sweep_at_once_and_the_runner_still_waits_for_it():
    class Sweep:
        def __init__(self):
            self.signals, self.waits, self.code = [], 0, None

        def wait(self, timeout=None):
            self.waits += 1
            if self.waits <= 2:  # the second Ctrl-C comes while the runner waits, and a third while it waits again
                raise KeyboardInterrupt
            self.code = 130

        def poll(self):
            return self.code

        def send_signal(self, signum):
            self.signals.append(signum)

    sweep = Sweep()
    assert cli._stop(sweep) == 130 and sweep.signals == [signal.SIGINT] * 2 and sweep.code == 130


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_sweep_whose_runner_is_killed_stops_as_interrupted(tmp_path):
    """The runner killed outright (no handler runs): its sweep gets a Ctrl-C instead of training on unwatched."""
    stopped = tmp_path / "stopped"
    child = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGINT, lambda *a: (pathlib.Path({str(stopped)!r}).write_text('yes'), sys.exit(130)))\n"
        "time.sleep(60)\n"
    )
    runner = (
        "import functools, os, subprocess, sys, time\n"
        "from bn_study.cli import studies\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}], preexec_fn=functools.partial(studies._interrupted_when_parent_dies, os.getpid()))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", runner], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "started"
    time.sleep(0.5)  # the child sets its handler
    parent.kill()
    parent.wait()
    for _ in range(100):
        if stopped.exists():
            break
        time.sleep(0.1)
    assert stopped.read_text() == "yes"
    # A runner that died before the signal was asked for (the sweep's parent is not the pid it was given): its sweep
    # never starts (it would sleep a minute)
    orphan = subprocess.Popen(
        [sys.executable, "-c", child], preexec_fn=functools.partial(cli._interrupted_when_parent_dies, 1)
    )
    assert orphan.wait(timeout=30) == 130


def test_every_committed_by_config_table_is_its_runs_grouped_by_configuration_now():
    """A table written by older code (a configuration split by kind of record) is caught, not trusted."""
    from bn_study.tables import stats

    for manifest in sorted((REPO / "results").glob("*/collection.json")):
        runs, _ = collect.load(manifest.parent)
        committed = pd.read_csv(manifest.parent / collect.CONFIGS_TABLE, low_memory=False)
        assert len(committed) == len(stats.by_config(runs)), manifest.parent.name


def test_a_launcher_passes_to_every_sweep_of_a_study_and_nothing_else_does(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "_sweep", lambda study, version, name, overrides, folder, launcher: seen.append(overrides))
    study = registry.get("normalizers")  # a study of several sweeps
    launcher = cli.launcher_overrides("hydra/launcher=basic 'hydra.launcher.note=a b'")
    cli.run_sweeps(study, Version(quick=True), tmp_path, [], launcher)
    assert len(seen) == len(study.sweeps) and all(
        o[-2:] == ["hydra/launcher=basic", "hydra.launcher.note=a b"] for o in seen
    )
    assert cli.main(["run", "input_bn", "--quick", "--results", str(tmp_path), "--launcher", "model.bn=before"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bn-study-studies: error: --launcher model.bn=before: only")
    # the resume hint of a study's failed sweep is the command that resumes it on the same launcher
    assigned, *rest = shlex.split(Version(quick=True).command("fig1", launcher))
    assert (
        rest == ["QUICK=1", "make", "fig1"] and cli.launcher_overrides(assigned.removeprefix("LAUNCHER=")) == launcher
    )
