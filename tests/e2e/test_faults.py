"""Faults: torn and missing curves, a collection torn between its writes, two owners of one folder, Ctrl-C,
corrupt manifests. Each must end in a refusal or a report, never in a table holding wrong numbers."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bn_study import files
from bn_study.cli import studies as studies_cli
from bn_study.cli import verify
from bn_study.config import ConfigError
from bn_study.run import records
from bn_study.run.execute import finished
from bn_study.sweep import ownership
from bn_study.tables import collect
from tests.conftest import REPO, TINY, cli, compose_run, refused


@pytest.fixture
def sweep(made, tmp_path):
    shutil.copytree(made, tmp_path / "sweep")
    return tmp_path / "sweep"


def _tear(folder):
    """Cut curves.csv's last row two characters into its value, as a crash during a write would (`...,accuracy,0.`)."""
    path = folder / "curves.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex(",") + 3])
    assert float(path.read_text().rpartition(",")[2]) != float(text.rpartition(",")[2])


@pytest.mark.parametrize("fault", ["torn", "missing", "torn, recorded before checksums"])
def test_a_finished_run_whose_curves_fail_verification_is_reported_left_out_and_redone(sweep, fault):
    good, bad = sweep / "0", sweep / "1"
    if fault == "missing":
        (bad / "curves.csv").unlink()
    else:
        _tear(bad)
    if (
        "before checksums" in fault
    ):  # a run.json written before runs recorded their curves: its final accuracy still checks
        record = records.read_run(bad)
        del record["curves"]
        files.write_json_atomic(bad / "run.json", record)

    got = collect.collect(sweep)
    assert list(got.runs["seed"]) == [0] and set(got.curves["run_id"]) == set(got.runs["run_id"])
    assert len(got.skipped) == 1 and str(bad) in got.skipped[0] and "fails verification" in got.skipped[0], got.skipped

    found = verify.check(sweep)
    assert found.runs == 1 and len(found.problems) == 1 and str(bad) in found.problems[0]
    assert finished(compose_run(*TINY, "seed=1"), bad) is None  # resume redoes it ...
    assert finished(compose_run(*TINY, "seed=0"), good) is not None  # ... and skips the good one


EDITS = {
    "final.val_accuracy": (
        lambda r: r["final"].update(val_accuracy=r["final"]["val_accuracy"] + 0.01),
        "final.val_accuracy is",
    ),
    "final.test_loss": (lambda r: r["final"].update(test_loss=r["final"]["test_loss"] / 2), "final.test_loss is"),
    "status": (lambda r: r.update(status="diverged"), "status diverged at step None"),
    "data.name": (
        lambda r: r["data"].update(name="fashion_mnist"),
        "data.name 'fashion_mnist' is not what its config asked for",
    ),
    "config": (lambda r: r["config"]["optimizer"].update(lr=2.0), "run_id is not its config's"),
    "run_id": (lambda r: r.update(run_id="0123456789ab"), "does not belong to this run.json"),
    "study": (lambda r: r.update(study="fig1"), "study 'fig1' is not its config's 'adhoc'"),
    "trainer.steps": (
        lambda r: r.update(config={**r["config"], "trainer": {**r["config"]["trainer"], "steps": 70}}),
        "run_id is not its config's",
    ),
    "data.n_test": (
        lambda r: r["data"].update(n_test=10_000),
        "split sizes (train, val, test) (3600, 400, 10000) are not mnist5k's (3600, 400, 1000)",
    ),
    "final, a key added": (
        lambda r: r["final"].update(train_accuracy=0.99),
        "final has test_accuracy, test_loss, train_accuracy, val_accuracy, val_loss",
    ),
    "diverged_at_step": (lambda r: r.update(diverged_at_step=20), "status done, but diverged_at_step is 20"),
}


@pytest.mark.parametrize("field", EDITS)
def test_an_edited_run_json_field_the_tables_read_fails_verification(sweep, field):
    """run.json's fields (what fig1_pilot's rate selection, the verdicts and the report read) must say what the
    curve and the config say: an edit is reported by collect and verify, and a rerun redoes the run."""
    edit, says = EDITS[field]
    folder = sweep / "1"
    record = records.read_run(folder)
    edit(record)
    files.write_json_atomic(folder / "run.json", record)
    got = collect.collect(sweep)
    assert list(got.runs["seed"]) == [0] and len(got.skipped) == 1 and says in got.skipped[0], got.skipped
    found = verify.check(sweep)
    assert len(found.problems) == 1 and says in found.problems[0]
    if field not in ("config", "trainer.steps", "run_id", "study"):  # those now name another run: refused
        assert finished(compose_run(*TINY, "seed=1"), folder) is None  # redone


def test_an_interrupted_run_of_another_config_is_not_overwritten(sweep):
    folder = sweep / "1"
    record = records.read_run(folder)
    files.write_json_atomic(folder / "run.json", {**record, "status": "failed"})
    with pytest.raises(
        ConfigError,
        match=f"{folder}: holds an interrupted run of another config \\(run {record['run_id']}, failed\\); choose another",
    ):
        finished(compose_run(*TINY, "seed=1", "optimizer.lr=0.5"), folder)
    assert finished(compose_run(*TINY, "seed=1"), folder) is None  # its own config: redone (resumed where it can be)
    from bn_study.run.execute import execute

    with pytest.raises(
        ConfigError, match="holds an interrupted run of another config"
    ):  # called directly too (a notebook)
        execute(compose_run(*TINY, "seed=1", "optimizer.lr=0.5"), folder)
    assert records.read_run(folder) == {**record, "status": "failed"}


def test_a_job_of_the_sweep_with_no_run_is_reported(sweep):
    (sweep / "sweep.json").write_text(
        json.dumps({"created_at": "2026-11-24T00:00:00", "n_jobs": 3, "jobs": [["seed=0"], ["seed=1"], ["seed=2"]]})
    )
    (sweep / "1" / "run.json").unlink()  # a job folder removed by hand
    missing = [
        f"{sweep}: job 2/3 (seed=1) has no run: never started, or its folder was removed",
        f"{sweep}: job 3/3 (seed=2) has no run: never started, or its folder was removed",
    ]
    got = collect.collect(sweep)
    assert list(got.runs["seed"]) == [0] and got.skipped == missing
    assert verify.check(sweep).unfinished == missing


def test_resume_redoes_a_torn_run_and_says_so(sweep):
    folder = sweep / "0"
    record = records.read_run(folder)
    whole = (folder / "curves.csv").read_text()
    _tear(folder)
    proc = cli(*TINY, f"hydra.run.dir={folder}")
    assert proc.returncode == 0, proc.stderr
    assert f"WARNING {folder}: redoing this run: curves.csv is not what the run wrote" in proc.stdout
    again = records.read_run(folder)
    assert again["started_at"] != record["started_at"] and again["final"] == record["final"]
    records.verified_curves(folder, again)
    assert (folder / "curves.csv").read_text() == whole  # the same run again, value for value


def test_a_rerun_of_a_finished_run_says_it_was_skipped(sweep):
    folder = sweep / "0"
    record = records.read_run(folder)
    proc = cli(*TINY, f"hydra.run.dir={folder}")
    assert proc.returncode == 0, proc.stderr
    assert (
        f"skipped: {folder} already holds this run, done (test acc {record['final']['test_accuracy']:.4f})"
        in proc.stdout
    )
    assert records.read_run(folder)["started_at"] == record["started_at"]


def test_run_files_are_as_readable_as_their_siblings(made):
    folder = made / "0"
    umask = os.umask(0)
    os.umask(umask)
    assert {(folder / name).stat().st_mode & 0o777 for name in ("run.json", "curves.csv")} == {0o666 & ~umask}


@pytest.fixture
def collected(made):
    return collect.collect(made)


def test_a_collection_torn_between_its_writes_is_refused(collected, tmp_path, monkeypatch):
    out = tmp_path / "results" / "s"
    collect.write(collected, out)
    assert len(collect.load(out)[0]) == 2

    # Kill the next collection (of one run) after its first table is in place, before the rest.
    one = collect.Collected(
        collected.runs.iloc[:1], collected.curves[collected.curves["run_id"] == collected.runs["run_id"].iloc[0]]
    )
    real_replace, calls = os.replace, []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(collect.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        collect.write(one, out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == [
        "by_config.csv",
        "collection.json",
        "curves.parquet",
        "runs.csv",
    ]  # no temp files left
    (out / ".curves.parquet.x1y2.tmp").write_bytes(b"PAR")  # what a SIGKILL mid-write would leave, cleanup unrun
    assert verify.check(out).unfinished == [
        f"{out / '.curves.parquet.x1y2.tmp'}: left by a write that was killed; safe to delete (the folder's next owner removes it)"
    ]
    with pytest.raises(collect.TornCollection, match="runs.csv: not the table collection.json describes"):
        collect.load(out)
    assert verify.main([str(out)]) == 1

    collect.write(one, out)  # collecting again repairs it
    assert len(collect.load(out)[0]) == 1 and verify.main([str(out)]) == 0
    assert not list(out.glob(".*.tmp")) and json.loads((out / "collection.json").read_text())["n_runs"] == 1
    (out / "collection.json").unlink()
    with pytest.raises(collect.TornCollection, match="collection.json: missing"):
        collect.load(out)


def test_the_newest_sweep_is_the_one_started_last_whatever_its_name(tmp_path):
    sweeps = tmp_path / "s" / "sweeps"
    for name, created in [
        ("2026-11-24_10-00-00_abc", "2026-11-24T10:00:00"),
        ("2026-11-24_09-00-00_def", "2026-11-24T09:00:00"),
        ("zz-my-copy", "2026-11-23T12:00:00"),
    ]:
        (sweeps / name).mkdir(parents=True)
        (sweeps / name / "sweep.json").write_text(json.dumps({"created_at": created}))
    (sweeps / "zzz-no-manifest").mkdir()
    assert collect.latest_sweep("s", tmp_path) == sweeps / "2026-11-24_10-00-00_abc"


FAST = ["data=mnist5k", "trainer.steps=20", "trainer.eval_every=10", "probe.examples=100"]


@pytest.mark.parametrize("mode", ["sweep", "run"])
def test_a_folder_has_one_owner_at_a_time(tmp_path, mode):
    folder = tmp_path / mode
    args = (
        ["-m", *FAST, "seed=0,1", f"hydra.sweep.dir={folder}"]
        if mode == "sweep"
        else [*FAST, f"hydra.run.dir={folder}"]
    )
    with ownership.owned(folder, "test"):
        assert ownership.owner(folder).startswith(f"pid {os.getpid()} on ")
        proc = cli(*args)
        assert (folder / ownership.LOCK).exists()  # the refused process removed nothing of the owner's
    assert f"in use by another bn-study process (pid {os.getpid()} on " in refused(proc), proc.stderr
    assert not list(folder.rglob("run.json")) and not (folder / "sweep.json").exists()
    assert ownership.owner(folder) is None and not (folder / ownership.LOCK).exists()


def test_the_folder_of_a_killed_owner_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "sweep"
    hold = f"from bn_study.sweep import ownership; import time\nwith ownership.owned({str(folder)!r}, 'x'):\n    print('held', flush=True); time.sleep(300)"
    owner = subprocess.Popen([sys.executable, "-c", hold], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline() == "held\n"
        assert ownership.owner(folder) == ownership._describe((folder / ownership.LOCK).read_text())
        with pytest.raises(ownership.FolderBusy, match=f"in use by another bn-study process \\(pid {owner.pid} on "):
            with ownership.owned(folder, "x"):
                pass
    finally:
        owner.kill()
        owner.wait()
    assert ownership.owner(folder) is None  # the kernel dropped the dead process's claim
    with caplog.at_level("INFO"), ownership.owned(folder, "hydra.sweep.dir=..."):
        pass
    assert f"taking over from a process that stopped without finishing (pid {owner.pid} on " in caplog.text


def test_two_collects_into_one_folder_are_refused(collected, tmp_path, capsys):
    with ownership.owned(tmp_path / "results" / "s", "test"):
        assert (
            studies_cli.collect_command(
                ["s", "--runs", str(collected.sources[0]), "--results", str(tmp_path / "results")]
            )
            == 2
        )
    assert (
        f"results folder {tmp_path / 'results' / 's'}: in use by another bn-study process (pid {os.getpid()}"
        in capsys.readouterr().err
    )


def test_the_report_of_a_missing_results_root_is_one_line(tmp_path, capsys):
    from bn_study.cli import studies as studies_cli

    assert studies_cli.main(["report", "--results", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"bn-study-studies: error: --results {tmp_path / 'none'}: no such folder\n"


def test_a_folder_that_cannot_be_made_is_one_line_and_exit_1(tmp_path):
    """A path through a file stands in for a read-only folder (root, who runs the tests here, can write anywhere)."""
    (tmp_path / "a-file").write_text("")
    proc = cli(*FAST, f"hydra.run.dir={tmp_path / 'a-file' / 'run'}")
    assert proc.returncode == 1 and proc.stderr == f"bn-study: error: Not a directory: {tmp_path / 'a-file' / 'run'}\n"


def test_a_corrupt_sweep_manifest_is_refused_in_one_line(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text('{"jobs": [')
    proc = cli("-m", *FAST, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"bn-study: error: hydra.sweep.dir={sweep}: its sweep.json is unreadable (JSONDecodeError)" in proc.stderr
    assert not list(sweep.rglob("run.json"))


def test_ctrl_c_prints_one_line_marks_the_run_failed_and_exits_130(tmp_path):
    folder = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "bn_study",
        "data=mnist5k",
        "trainer.steps=20000",
        "trainer.eval_every=100",
        f"hydra.run.dir={folder}",
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and ",100,test,accuracy," not in (
        (folder / "curves.csv").read_text() if (folder / "curves.csv").exists() else ""
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"bn-study: interrupted: run folder {folder} marked failed; rerun the same command to redo it"
    ]
    assert records.read_run(folder)["status"] == "failed"
    assert verify.check(folder).unfinished == [f"{folder}: failed"]


def test_every_committed_collection_verifies():
    manifests = sorted((REPO / "results").glob(f"*/{collect.MANIFEST}"))
    assert len(manifests) >= 10
    for manifest in manifests:
        collect.verify(manifest.parent)


def test_a_killed_writes_leftovers_are_removed_by_the_folders_next_owner(tmp_path):
    (tmp_path / ".run.json.x1y2.tmp").write_text("{half")
    assert verify.check(tmp_path).unfinished == [
        f"{tmp_path / '.run.json.x1y2.tmp'}: left by a write that was killed; safe to delete "
        "(the folder's next owner removes it)"
    ]
    with ownership.owned(tmp_path, "test"):
        pass
    assert verify.check(tmp_path).unfinished == []


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path):
    import errno

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as err:
        files.staged(tmp_path / "curves.csv", full)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "curves.csv")
    assert not files.leftovers(tmp_path)


def test_a_checkpoint_that_cannot_be_saved_fails_the_run_naming_the_file(tmp_path, monkeypatch):
    import tensorflow as tf

    from bn_study.run import checkpoints
    from bn_study.run.execute import execute

    def full(self, prefix, options=None):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{prefix}.data-00000-of-00001.tempstate123; No space left on device"
        )

    monkeypatch.setattr(tf.train.Checkpoint, "write", full)
    with pytest.raises(OSError) as err:
        execute(compose_run(*TINY), tmp_path / "run")
    assert (
        err.value.filename == str(tmp_path / "run" / checkpoints.FOLDER / "ckpt-0")
        and err.value.strerror == "cannot save the checkpoint: No space left on device"
    )
    assert records.read_run(tmp_path / "run")["status"] == "failed"


def test_a_full_disk_during_a_run_is_one_line_and_exit_1(tmp_path):
    """For real, on a 600 KB tmpfs: the first checkpoint does not fit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (not root, or no permission in this container)")
    try:
        proc = cli(*TINY, f"hydra.run.dir={disk / 'run'}")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert proc.returncode == 1, proc.stderr
    assert re.fullmatch(
        f"bn-study: error: cannot save the checkpoint: No space left on device: {disk / 'run' / 'checkpoint'}/ckpt-\\d+\n",
        proc.stderr,
    ), proc.stderr


def test_a_sweep_whose_job_failed_does_not_end_with_sweep_complete(tmp_path):
    from bn_study.sweep.manifest import JobProgress

    (tmp_path / "sweep.json").write_text(json.dumps({"n_jobs": 3, "jobs": [["seed=0"], ["seed=1"], ["seed=2"]]}))
    for job, status in enumerate(["done", "failed", "done"]):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "run.json").write_text(json.dumps({"status": status, "wall_seconds": 1.0}))
    assert (
        JobProgress(tmp_path, 2, ["seed=2"])._eta()
        == f" | sweep ended, 1 of 3 jobs failed: rerun it with hydra.sweep.dir={tmp_path} to redo them"
    )
    (tmp_path / "1" / "run.json").write_text(json.dumps({"status": "done", "wall_seconds": 1.0}))
    assert JobProgress(tmp_path, 2, ["seed=2"])._eta() == " | sweep complete"


def test_a_studys_hint_names_a_make_command_that_exists(tmp_path):
    import pandas as pd

    from bn_study.cli import studies as studies_cli
    from bn_study.studies.registry import Version, get

    with pytest.raises(studies_cli.StageError) as err:
        studies_cli.collect_study(get("placement"), Version(quick=True), tmp_path, pd.DataFrame())
    assert (
        str(err.value)
        == f"no sweeps under {tmp_path / 'placement_quick' / 'sweeps'}: run `QUICK=1 make placement` first"
    )
    out = subprocess.run(["make", "-n", "placement", "QUICK=1"], cwd=REPO, capture_output=True, text=True).stdout
    assert "bn-study-studies run placement --quick" in out


def test_ctrl_c_in_a_commands_first_moments_is_one_line(tmp_path):
    """While Python still imports pandas and Hydra (the first second): one line, exit 130, no traceback."""
    script = os.path.join(os.path.dirname(sys.executable), "bn-study-studies")
    for delay in (0.15, 0.6):
        proc = subprocess.Popen([script, "list"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            continue  # it had already finished
        assert (
            proc.returncode == 130 and len(err.splitlines()) == 1 and err.startswith("bn-study-studies: interrupted")
        ), err


def test_ctrl_c_while_a_study_runs_is_one_line_saying_how_to_resume(tmp_path):
    """As under `make <study>`: the terminal's Ctrl-C reaches the study runner and its sweep alike."""
    args = [sys.executable, "-m", "bn_study.cli.studies", "run", "input_bn", "--quick", "--results", str(tmp_path)]
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/sweeps/*/0/curves.csv")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if not line.startswith("skipped ")]
    assert proc.returncode == 130 and len(lines) == 1, err
    assert lines[0].startswith("bn-study-studies: interrupted: sweep input_bn stopped, its finished runs kept in ")
    assert lines[0].endswith("; rerun `QUICK=1 make input_bn` to resume it")
