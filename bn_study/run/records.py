"""The files of one run folder: `run.json` (rewritten atomically) and `curves.csv` (appended, flushed).

run.json's `status` is `running` from the first write until the run ends as `done`, `diverged` or
`failed`; a folder left at `running` is an interrupted run. curves.csv is long form,
`run_id,step,split,metric,value`, one row per measurement, flushed at every evaluation so a killed
run keeps every point it measured.

A finished run is verifiable: on closing, run.json records what its curves.csv holds (rows, bytes,
SHA-256), and `verified_curves` checks the file against that record and against the run's final values
before anyone (collect, resume, verify) trusts it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from bn_study.config import config_id, identity_of
from bn_study.data.datasets import DATASETS, n_val
from bn_study.files import digest, named, now, staged, write_json_atomic
from bn_study.run.provenance import versions

RUN_JSON = "run.json"
CURVES_CSV = "curves.csv"
CURVE_COLUMNS = ["run_id", "step", "split", "metric", "value"]
STATUSES = ("running", "done", "diverged", "failed")

# The splits a run evaluates (run.Trainer's), the only ones a diverged run logs where it stopped.
EVALUATED = ("test", "val")


class Unverified(ValueError):
    """A finished run whose curves.csv is missing, torn or edited: not to be trusted, collected or skipped."""


def verified_curves(folder: Path, record: dict):
    """The curves of a finished run as a DataFrame, once checked against run.json: the size and checksum it
    recorded on closing; and, for every run (those that predate the checksum too), that every row is whole, that
    the curve ends at the run's last step with every series measured at the start measured there too, and that
    every field of run.json the tables use says what the curve and the config say (`_check_record`). Raises
    Unverified saying what is wrong."""
    # pandas only to read a finished run's curve: a refused command never pays for it
    import pandas as pd

    path = Path(folder) / CURVES_CSV
    try:
        data = path.read_bytes()  # read once: what is checked is what is parsed
    except FileNotFoundError:
        raise Unverified(f"{CURVES_CSV} is missing") from None
    expected = record.get("curves")
    if expected is not None:
        found = digest(data)
        if found != {k: expected.get(k) for k in found}:
            raise Unverified(
                f"{CURVES_CSV} is not what the run wrote ({found['bytes']} bytes, run.json recorded {expected.get('bytes')} "
                "and another checksum): torn or edited"
            )
    if not data.endswith(b"\n"):  # every row is written whole, newline included: a cut file ends mid-row
        raise Unverified(f"{CURVES_CSV} ends mid-row: torn")
    try:
        curve = pd.read_csv(io.BytesIO(data), dtype={"run_id": str})  # an all-digit id must stay a string
    except (ValueError, pd.errors.ParserError) as err:
        raise Unverified(f"{CURVES_CSV} is unreadable ({err})") from None
    if list(curve.columns) != CURVE_COLUMNS or (curve["run_id"] != record.get("run_id")).any():
        raise Unverified(f"{CURVES_CSV} does not belong to this run.json (columns or run_id differ)")
    if curve[CURVE_COLUMNS[:-1]].isna().any(axis=None):
        raise Unverified(f"{CURVES_CSV} has rows with missing fields: torn or edited")
    if expected is not None and len(curve) != expected.get("rows"):
        raise Unverified(f"{CURVES_CSV} has {len(curve)} rows, run.json recorded {expected.get('rows')}")
    last_step = int(curve["step"].max()) if len(curve) else None
    if last_step != record.get("steps"):
        raise Unverified(f"{CURVES_CSV} ends at step {last_step}, the run at step {record.get('steps')}")
    expected_series = _series(curve, 0)
    if record.get("status") == "diverged":  # where it blew up a run records NaN for its evaluated splits, no probe
        expected_series = {s for s in expected_series if s.split("/")[0] in EVALUATED}
    cut = expected_series - _series(curve, last_step)
    if cut:
        raise Unverified(f"{CURVES_CSV} lacks {', '.join(sorted(cut))} at its last step {last_step}: torn or edited")
    _check_record(record, curve, last_step)
    return curve


def _check_record(record: dict, curve, last_step: int) -> None:
    """run.json's fields that the tables read, against its config and its curve: an edited run.json is refused."""
    try:
        config, status, final = record["config"], record["status"], record.get("final") or {}
        data, trainer = record["data"], config["trainer"]
        own_id = config_id(identity_of(config))
        if record["run_id"] != own_id:
            raise Unverified(f"{RUN_JSON}'s run_id is not its config's ({own_id}): edited")
        if record.get("study", config.get("study")) != config.get("study"):
            raise Unverified(
                f"{RUN_JSON}'s study {record.get('study')!r} is not its config's {config.get('study')!r}: edited"
            )
        requested, used = config["data"]["name"], data["name"]
        fell_back = requested in DATASETS and DATASETS[requested].fallback == used and data.get("fallback")
        if used != requested and not fell_back:
            raise Unverified(
                f"{RUN_JSON}'s data.name {used!r} is not what its config asked for ({requested!r}) and no fallback is recorded: edited"
            )
        _check_sizes(data, config["data"])
        at_end = curve[curve["step"] == last_step]
        evaluated = sorted(set(curve[curve["step"] == 0]["split"]) & set(EVALUATED))
        if set(final) != {f"{split}_{metric}" for split in evaluated for metric in ("loss", "accuracy")}:
            raise Unverified(
                f"{RUN_JSON}'s final has {', '.join(sorted(final)) or 'nothing'}, its {CURVES_CSV} evaluates {', '.join(evaluated)}: edited"
            )
        for split in evaluated:
            for metric in ("loss", "accuracy"):
                values = at_end[(at_end["split"] == split) & (at_end["metric"] == metric)]["value"]
                value, said = (float(values.iloc[-1]) if len(values) else math.nan), final.get(f"{split}_{metric}")
                said = math.nan if said is None else float(said)
                if status == "done" and not math.isfinite(value):
                    raise Unverified(
                        f"status done, but its {split} {metric} at the last step is {value}: a diverged run"
                    )
                if not (value == said or (math.isnan(value) and math.isnan(said))):
                    raise Unverified(
                        f"{RUN_JSON}'s final.{split}_{metric} is {said!r}, its {CURVES_CSV} ends at {value!r}: edited"
                    )
        if status == "diverged" and record.get("diverged_at_step") != last_step:
            raise Unverified(
                f"status diverged at step {record.get('diverged_at_step')}, but its {CURVES_CSV} stops at step {last_step}: edited"
            )
        if status == "diverged" and not at_end[at_end["split"].isin(EVALUATED)]["value"].isna().all():
            raise Unverified(
                f"status diverged, but its {CURVES_CSV} has finite evaluations at its last step {last_step}: edited"
            )
        if status == "done" and record.get("diverged_at_step") is not None:
            raise Unverified(f"status done, but diverged_at_step is {record.get('diverged_at_step')}: edited")
        if status == "done" and last_step != trainer["steps"] and record.get("stopped_at_step") != last_step:
            raise Unverified(
                f"status done at step {last_step} of trainer.steps={trainer['steps']}, and no callback stopped it: edited"
            )
    except (KeyError, TypeError, ValueError) as err:
        raise Unverified(f"{RUN_JSON} lacks or garbles a field the tables read ({type(err).__name__}: {err})") from None


def _check_sizes(data: dict, asked: dict) -> None:
    """The split sizes run.json records (the verdicts' sampling errors and the summaries' epochs read them) against
    the dataset's spec, for the datasets bn-study ships a spec of and reads from its usual source."""
    if data["name"] not in DATASETS or asked.get("path") is not None:
        return
    spec = DATASETS[data["name"]].spec
    val = n_val(spec.n_train, asked.get("val_fraction", 0.0))
    train = asked.get("train_size") or spec.n_train - val  # data.train_size cuts the training split to its size
    found, expected = (
        (data.get("n_train"), data.get("n_val", 0), data.get("n_test")),
        (train, val, spec.n_test),
    )
    if found != expected:
        raise Unverified(
            f"{RUN_JSON}'s split sizes (train, val, test) {found} are not {data['name']}'s {expected}: edited"
        )


def curve_reaches(folder: Path, step: int, measured: dict, eval_every: int) -> str | None:
    """Why `folder`'s curves.csv does not hold every evaluation from step 0 to `step`, the last one measuring
    `measured`; None if it does. A checkpoint its curve does not reach would resume over a hole."""
    try:
        rows = rows_up_to(Path(folder) / CURVES_CSV, step)
        evaluated = {int(row[1]) for row in rows if row[2:4] == ["test", "accuracy"]}
        at_step = {(row[2], row[3]): float(row[4]) for row in rows if int(row[1]) == step}
    except (OSError, ValueError) as err:
        return f"{CURVES_CSV} is unreadable ({type(err).__name__})"
    missing = sorted(set(range(0, step + 1, eval_every)) - evaluated)
    if missing:
        return f"{CURVES_CSV} lacks the evaluation at step {missing[0]}" + (
            f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        )
    for split, values in measured.items():
        for metric, value in values.items():
            if at_step.get((split, metric)) != float(value):
                return f"its {split} {metric} at step {step} is not the one {CURVES_CSV} holds there"
    return None


def _series(curve, step: int) -> set[str]:
    at = curve[curve["step"] == step]
    return set(at["split"] + "/" + at["metric"])


def read_run(folder: Path) -> dict:
    return json.loads((Path(folder) / RUN_JSON).read_text())


def rows_up_to(path: Path, step: int) -> list[list[str]]:
    """The whole rows of a curves.csv up to `step` (a kill mid-row leaves a torn last line)."""
    with open(path, newline="") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    whole = [line for line in lines[1:] if line.endswith("\n")]
    return [row for row in csv.reader(whole) if len(row) == len(CURVE_COLUMNS) and int(row[1]) <= step]


class RunWriter:
    """Writes one run folder. The curve file is truncated on start, so a redone run never duplicates rows; a run
    resumed from a checkpoint at step `resume_at` keeps the rows up to that step (whole ones) and goes on from there."""

    def __init__(self, folder: Path, record: dict, resume_at: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record = {**record, "status": "running", "started_at": now(), "versions": versions()}
        self._json = self.folder / RUN_JSON
        path = self.folder / CURVES_CSV
        kept = [CURVE_COLUMNS]
        if resume_at is not None:
            kept += rows_up_to(path, resume_at)
            earlier = read_run(self.folder)
            self.record.update(
                started_at=earlier.get("started_at", self.record["started_at"]),
                resumed=[*earlier.get("resumed", []), {"step": resume_at, "at": now()}],
                **{k: earlier[k] for k in ("mlflow_run_id",) if k in earlier},
            )
        write_json_atomic(self._json, self.record)
        os.replace(staged(path, lambda tmp: _write_rows(tmp, kept)), path)
        self._rows = len(kept) - 1
        self._file = open(path, "a", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")

    def log(self, step: int, split: str, metrics: dict) -> None:
        for metric, value in metrics.items():
            self._csv.writerow([self.record["run_id"], step, split, metric, repr(float(value))])
            self._rows += 1

    def flush(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise named(err, self.folder / CURVES_CSV) from None

    def update(self, **fields) -> None:
        self.record.update(fields)
        write_json_atomic(self._json, self.record)

    def close(self, status: str, **fields) -> None:
        assert status in STATUSES[1:], status
        self.flush()
        self._file.close()
        self.update(
            status=status, finished_at=now(), curves={"rows": self._rows, **digest(self.folder / CURVES_CSV)}, **fields
        )


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
