"""Registration by the machine: a claim's canonical hash, the ledger's chain and its agreement with git, cells compared by
what trains, and the rule that makes a verdict registered or post hoc."""

import importlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bn_study.claims import Claim, Final, Side, canonical, ledger
from bn_study.studies import declaration
from bn_study.studies.registry import studies

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
CLAIM = Claim("t.c", "a source", "a sentence", Side("a", {"model.bn": "before"}), Side("b"), Final(), "higher", 0.01)


def test_a_declaration_hashes_what_decides_a_verdict_and_nothing_else(tmp_path):
    (tmp_path / "experiments").mkdir()
    yaml = "study: t\nhydra:\n  sweeper:\n    params:\n      model.bn: none,before\n      seed: {}\n"
    (tmp_path / "experiments" / "t.yaml").write_text(yaml.format("0,1,2,3,4"))
    sweeps = {"t": canonical.experiment(tmp_path, "t")}
    base = canonical.claim_hash(CLAIM, sweeps)
    # the id, the source cited, the history notes and the seeds swept leave it alone
    assert canonical.claim_hash(replace(CLAIM, id="t.other", source="another", history="notes"), sweeps) == base
    (tmp_path / "experiments" / "t.yaml").write_text("# a comment\n" + yaml.format("0-19"))
    assert canonical.claim_hash(CLAIM, {"t": canonical.experiment(tmp_path, "t")}) == base
    # the margin, a side's cells, the metric and the experiment's content change it
    assert canonical.claim_hash(replace(CLAIM, margin=0.02), sweeps) != base
    assert canonical.claim_hash(replace(CLAIM, a=Side("a", {"model.bn": "after"})), sweeps) != base
    assert canonical.claim_hash(replace(CLAIM, metric=Final("val")), sweeps) != base
    (tmp_path / "experiments" / "t.yaml").write_text(yaml.format("0") + "trainer:\n  steps: 10\n")
    assert canonical.claim_hash(CLAIM, {"t": canonical.experiment(tmp_path, "t")}) != base


def test_the_rule_that_selects_a_studys_cells_is_in_its_claims_declaration():
    sweeps = {"t": None}
    base = canonical.claim_hash(CLAIM, sweeps)
    fig1 = studies()["fig1"]
    rule = canonical.selection(fig1, REPO)
    assert rule["text"] == fig1.selected.func.__self__.text  # as the study states it
    assert "fig1_pilot" in rule["sweeps"]  # the pilot's grid, named by a constant the rule's code reads
    assert any("selected_lr" in tree for tree in rule["code"])  # and the code it calls, in turn
    selected = canonical.claim_hash(CLAIM, sweeps, rule)
    assert selected != base
    for change in ({"text": rule["text"] + "!"}, {"code": rule["code"][:-1]}, {"sweeps": {}}, {"constants": {}}):
        assert canonical.claim_hash(CLAIM, sweeps, {**rule, **change}) != selected
    for study in studies().values():  # the same in any process: no memory address
        assert " at 0x" not in json.dumps(canonical.selection(study, REPO))
    assert canonical.selection(studies()["placement"], REPO) is None


def test_a_rules_code_is_hashed_by_what_it_does_not_how_it_is_written(tmp_path, monkeypatch):
    source = (
        "LIMIT = 0.5\n\ndef pick(runs):\n    {doc}return helper(runs) > LIMIT\n\ndef helper(runs):\n    return {body}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def code(name, **parts):
        (tmp_path / f"{name}.py").write_text(source.format(**{"doc": "", "body": "max(runs)", **parts}))
        return canonical._code([importlib.import_module(name).pick])

    plain = code("rule_a")
    assert plain[1] == {"LIMIT": 0.5} and len(plain[0]) == 2  # pick and the helper it calls
    assert code("rule_b", doc='"""A docstring."""\n    ') == plain
    assert code("rule_c", body="min(runs)") != plain


def test_cells_compare_what_trains_whatever_the_study_seed_evaluation_or_length():
    row = {"model.bn": "none", "optimizer.lr": 2.0, "data.standardize": "none", "trainer.steps": 50000}
    runs = pd.DataFrame(
        [
            row,
            {**row, "seed": 3, "study": "fig1_second_lr", "trainer.eval_every": 100, "probe.enabled": False},
            {**row, "data.standardize": False},  # an older run's way of writing "off"
            {**row, "trainer.steps": 10000},  # a pilot: the same training's first 10,000 steps
            {**row, "optimizer.lr": 4.0},
        ]
    )
    keys = list(ledger.cell_keys(runs))
    assert keys[0] == keys[1] == keys[2] == keys[3] != keys[4]
    # a number is never a bool: dropout 0 is not 'off', an init scale of 1 is not 'on'; 1, 1.0 and '1' are one value
    values = [{"model.dropout": 0.0}, {"model.dropout": False}, {"model.init_std": 1}, {"model.init_std": True}]
    values += [{"model.init_std": "1.0"}]
    keys = list(ledger.cell_keys(pd.DataFrame(values)))
    assert keys[0] != keys[1] and keys[2] != keys[3] and keys[2] == keys[4]


def test_a_claim_committed_with_its_runs_or_off_their_history_is_post_hoc_whatever_the_clocks_say(tmp_path):
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "claim")
    claim_commit = git("rev-parse", "HEAD")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "runs")
    runs_commit = git("rev-parse", "HEAD")
    runs = pd.DataFrame(
        [{"model.bn": bn, "seed": 0, "folder": "results/t/sweeps/2026-11-24_10-00-00_t/0"} for bn in ("none", "before")]
    )
    cell = ledger.cell_keys(runs.iloc[:1]).iloc[0]
    declared = {"kind": "claim", "study": "t", "claim": "t.c", "hash": "h1", "at": "2026-11-24T09:00:00+00:00"}
    held = {
        "kind": "cell",
        "cell": cell,
        "first_run_at": "2026-11-24T10:00:00+00:00",
        "run_id": "r",
        "at": "2026-11-24T11:00:00+00:00",
    }
    for claimed, ran, post_hoc in (
        (claim_commit, runs_commit, False),
        (runs_commit, runs_commit, True),
        (runs_commit, claim_commit, True),
    ):
        (tmp_path / ledger.LEDGER).unlink(missing_ok=True)
        book = _book(tmp_path, [{**declared, "commit": claimed}, {**held, "commit": ran}])
        assert ledger.assess(book, "t", CLAIM, "h1", runs, tmp_path)["post_hoc"] is post_hoc, (claimed, ran)


def _book(tmp_path, entries) -> ledger.Ledger:
    book = ledger.Ledger(tmp_path / ledger.LEDGER)
    book.append(entries)
    return ledger.read(tmp_path)


def test_a_claim_is_registered_only_when_its_declaration_is_older_than_every_run_of_its_cells(tmp_path):
    runs = pd.DataFrame(
        [
            {"model.bn": bn, "seed": s, "folder": f"results/t/sweeps/2026-11-24_10-00-0{s}_t/{s}"}
            for bn in ("none", "before")
            for s in range(3)
        ]
    )
    declared = {"kind": "claim", "study": "t", "claim": "t.c", "hash": "h1", "commit": "c1"}
    before = _book(tmp_path, [{**declared, "at": "2026-11-24T09:59:59+00:00"}])
    record = ledger.assess(before, "t", CLAIM, "h1", runs, REPO)
    assert not record["post_hoc"] and record["first_run_at"] == "2026-11-24T10:00:00+00:00"
    # an earlier run of one cell it reads, under another study's name, in the ledger: post hoc
    cell = ledger.cell_keys(runs.iloc[:1]).iloc[0]
    earlier = {"kind": "cell", "cell": cell, "first_run_at": "2026-11-23T00:00:00+00:00", "run_id": "r", "commit": "c0"}
    (tmp_path / ledger.LEDGER).unlink()
    book = _book(
        tmp_path, [{**declared, "at": "2026-11-24T09:59:59+00:00"}, {**earlier, "at": "2026-11-23T01:00:00+00:00"}]
    )
    assert ledger.assess(book, "t", CLAIM, "h1", runs, REPO)["post_hoc"]
    # a declaration the ledger does not hold (changed since the last scan, or never committed): post hoc
    record = ledger.assess(before, "t", CLAIM, "h2", runs, REPO)
    assert record["post_hoc"] and record["registered_at"] is None
    # declared, then another declaration committed before the runs (and a switch back after them): post hoc
    (tmp_path / ledger.LEDGER).unlink()
    switched = {**declared, "hash": "h2", "commit": "c2", "at": "2026-11-24T09:59:59.500000+00:00"}
    book = _book(tmp_path, [{**declared, "at": "2026-11-24T09:59:59+00:00"}, switched])
    assert ledger.assess(book, "t", CLAIM, "h1", runs, REPO)["post_hoc"]


def test_an_edited_or_reordered_ledger_line_is_refused_naming_it(tmp_path):
    book = _book(tmp_path, [{"kind": "scan", "commit": f"c{i}", "at": "t"} for i in range(3)])
    lines = book.path.read_text().splitlines()
    book.path.write_text("\n".join([lines[0], lines[1].replace("c1", "c9"), lines[2]]) + "\n")
    with pytest.raises(ledger.LedgerError, match=r"line 2: edited"):
        ledger.read(tmp_path)
    book.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(ledger.LedgerError, match=r"line 2: edited"):
        ledger.read(tmp_path)


@pytest.mark.skipif(not ledger.has_history(REPO), reason="needs the repository's whole git history")
def test_the_committed_ledger_verifies_against_git_and_an_entry_git_does_not_back_is_refused(tmp_path):
    book = ledger.read(RESULTS)
    ledger.verify(book, REPO)
    assert {e["kind"] for e in book.entries} == {"claim", "cell", "scan"}
    claim = next(e for e in book.entries if e["kind"] == "claim")
    for wrong, message in (
        ({"commit": "0" * 40}, "is not in this repository's history"),
        ({"at": "2020-01-01T00:00:00+00:00"}, "was made at"),
    ):
        forged = _book(tmp_path, [{k: v for k, v in {**claim, **wrong}.items() if k not in ("prev", "sha")}])
        with pytest.raises(ledger.LedgerError, match=message):
            ledger.verify(forged, REPO)
        forged.path.unlink()
    # A later claim moved to the first registering commit, at that commit's time, its chain rebuilt: git backs the commit,
    # but the checkout there does not declare the claim
    first, last = claim, [e for e in book.entries if e["kind"] == "claim"][-1]
    moved = {
        k: v for k, v in {**last, "commit": first["commit"], "at": first["at"]}.items() if k not in ("prev", "sha")
    }
    forged = _book(tmp_path, [moved])
    ledger.verify(forged, REPO)
    with pytest.raises(
        ledger.LedgerError, match=rf"line 1: commit {first['commit'][:12]} does not declare {last['study']}"
    ):
        ledger.verify_declarations(forged, REPO, log=lambda line: None)


def test_every_committed_verdict_carries_its_claims_current_declaration():
    """A declaration changed without rendering its study again leaves a verdict judged under an older rule (the
    registered studies', and the study files' whose results the repository commits: docs/examples/)."""
    files = [declaration.load(path) for path in sorted((REPO / "docs" / "examples").glob("*.yaml"))]
    current = ledger.current_hashes({**studies(), **{study.name: study for study in files}})
    for path in sorted(RESULTS.glob("*/verdicts.json")):
        found = json.loads(path.read_text())
        for record in found["claims"]:
            assert record["registration"]["hash"] == current[found["study"]][record["id"]], (path, record["id"])
            assert record["post_hoc"] == record["registration"]["post_hoc"]


def test_a_registered_verdict_decided_at_a_look_that_came_in_after_its_registration_is_a_late_look():
    from bn_study.claims import sequential

    def record(registered_at, looks=(5, 10), outcome="holds", post_hoc=False):
        return {
            "registration": {"registered_at": registered_at},
            "post_hoc": post_hoc,
            "looks": list(looks),
            "outcome": outcome,
        }

    before, after = "2026-12-05T10:00:00+00:00", "2026-12-06T10:00:00+00:00"
    assert before < sequential.SINCE < after
    assert ledger.late_look(record(before))
    assert not ledger.late_look(record(after))  # registered with its looks
    assert not ledger.late_look(record(before, looks=(5,)))  # decided at the look it was registered for
    assert not ledger.late_look(record(before, outcome="inconclusive"))
    assert not ledger.late_look(record(before, post_hoc=True))  # marked post hoc already
    assert not ledger.late_look(record(None))


def test_a_claim_depends_on_its_sides_its_targets_runs_and_its_baseline():
    from bn_study.claims import GridCount, StepsTo

    to_base = Claim(
        "t.c",
        "s",
        "x",
        Side("a", {"arm": "a"}),
        Side("b", {"arm": "b"}),
        StepsTo("val", "accuracy", target=(("arm", "t"),)),
        "lower",
        0.1,
    )
    assert to_base.reads() == [{"arm": "a"}, {"arm": "t"}, {"arm": "b"}, {"arm": "t"}]
    of_best = replace(to_base, metric=GridCount(grid="lr", of_best=0.9, baseline=(("arm", "base"),)))
    assert of_best.reads() == [{"arm": "a"}, {"arm": "b"}]  # the baseline's median is not read seed by seed
    assert of_best.depends_on() == [{"arm": "a"}, {"arm": "b"}, {"arm": "base"}, {"arm": "base"}]


@pytest.mark.slow
def test_every_committed_claim_entry_is_what_its_commit_declares():
    ledger.verify_declarations(ledger.read(RESULTS), REPO, log=lambda line: None)


@pytest.mark.skipif(not ledger.has_history(REPO), reason="needs the repository's whole git history")
def test_a_cell_entry_the_run_tables_history_does_not_give_is_refused_even_with_its_chain_rebuilt(tmp_path):
    book = ledger.read(RESULTS)
    ledger.verify_cells(book, REPO)
    own = [{k: v for k, v in e.items() if k not in ("prev", "sha")} for e in book.entries]
    first_cell = next(i for i, e in enumerate(own) if e["kind"] == "cell")
    later = {**own[first_cell], "first_run_at": "2030-01-01T00:00:00+00:00"}
    for forged, message in (
        ([*own[:first_cell], later, *own[first_cell + 1 :]], rf"line {first_cell + 1}: the run tables' history gives"),
        ([*own[:first_cell], *own[first_cell + 1 :]], rf"line {first_cell + 1}: the run tables' history gives"),
    ):
        with pytest.raises(ledger.LedgerError, match=message):
            ledger.verify_cells(_book(tmp_path, forged), REPO)
        (tmp_path / ledger.LEDGER).unlink()
    cells_only = [e for e in own if e["kind"] == "cell"]  # no scan entry says how far the history was read
    with pytest.raises(ledger.LedgerError, match="no scan entry"):
        ledger.verify_cells(_book(tmp_path, cells_only), REPO)
