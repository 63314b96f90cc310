"""The registration ledger, results/ledger.jsonl: when each claim's declaration was first committed, and when each
trained configuration (a cell) first ran, both read from git and appended to. Every line can be re-derived from git
(`update` on an empty ledger): it was rebuilt so three times, at 0400119, when a cell came to leave a run's length out,
and twice on 2026-12-07, when the rule that selects a study's setting from another study's runs came into a declaration
(claims.canonical), its words (9575c90), then its code and the pilot's grid (0d219ef).

A claim is registered when the commit that first held its current declaration (claims.canonical) is older than every
run of the cells its verdict reads and an ancestor of every commit that first held those runs' tables; otherwise it is
post hoc. A cell is compared by what trains, not by what a run
measures, which study it belongs to or how long it runs (its data, model, optimizer and batch: runs.csv's columns of those, a value
of false, none or empty counting as off, a column a run's schema lacked at today's default), so fig1's runs at lr 2
are the cells fig1_second_lr reads, and a new evaluation protocol is no new cell. A cell's first run is its sweep's start
(the sweep folder's time stamp, in UTC: files.stamp; folders named before 2026-12-06 took the host's local clock, read as UTC), or where a run has none the time of the commit its code was at (never later than the
run). Commits after the last one scanned are scanned by `update` (make report); the ledger's own past was built the same
way from the repository's history.

Each line carries its own digest and the one of the line before it, so an edited or removed line breaks the chain; every commit an
entry names must be in the repository's history with the time the entry gives. Either is refused in one line.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bn_study import config as config_lib
from bn_study.claims import canonical, sequential
from bn_study.claims.metrics import select
from bn_study.files import write_text_atomic
from bn_study.tables import stats

LEDGER = "ledger.jsonl"
# Claims became data at this commit: no declaration to hash before it.
FIRST_COMMIT = "fcc0290"
# Paths whose change may change a declaration, and where the runs' tables live.
DECLARATIONS = ("bn_study/studies", "bn_study/claims", "bn_study/claims.py", "bn_study/conf/experiment", "experiments")
RUN_TABLES = "results/*/runs.csv"
# A run's length is left out: runs of one training that differ only in their steps share their first steps value for
# value (a pilot's 10,000 steps are the first 10,000 of a 50,000-step run at its rate), so a shorter or longer run of
# it, seen earlier, is a run of the cell.
TRAINING = ("data.", "model.", "optimizer.", "trainer.batch_size", "trainer.partial_batch")
NOT_TRAINING = ("_target_", "data.path")
FOLDER_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})_(\d{2})-(\d{2})-(\d{2})")


class LedgerError(ValueError):
    """A ledger that does not verify: an edited line, or an entry git does not back."""


@dataclass
class Ledger:
    path: Path
    entries: list[dict] = field(default_factory=list)

    @property
    def scanned(self) -> str | None:
        """The newest commit scanned."""
        return next((e["commit"] for e in reversed(self.entries) if e["kind"] == "scan"), None)

    @functools.cached_property
    def registered(self) -> dict[tuple[str, str, str], dict]:
        """(study, claim, hash) -> its first claim entry."""
        out = {}
        for e in self.entries:
            if e["kind"] == "claim":
                out.setdefault((e["study"], e["claim"], e["hash"]), e)
        return out

    @functools.cached_property
    def cell_commits(self) -> dict[str, set[str]]:
        """cell -> every commit that held runs of it (the ledger records each commit that held one earlier than known)."""
        out: dict[str, set[str]] = {}
        for e in self.entries:
            if e["kind"] == "cell" and e["commit"]:  # a cell seen only in tables git does not hold yet has none
                out.setdefault(e["cell"], set()).add(e["commit"])
        return out

    @functools.cached_property
    def cells(self) -> dict[str, dict]:
        """cell -> its earliest entry."""
        out: dict[str, dict] = {}
        for e in self.entries:
            if e["kind"] == "cell" and (e["cell"] not in out or e["first_run_at"] < out[e["cell"]]["first_run_at"]):
                out[e["cell"]] = e
        return out

    def append(self, entries: list[dict]) -> None:
        """Chain `entries` on and write the whole file atomically."""
        previous = self.entries[-1]["sha"] if self.entries else ""
        for e in entries:
            e = {**e, "prev": previous}
            e["sha"] = previous = _line_digest(_text(e))
            self.entries.append(e)
        self.__dict__.pop("registered", None)
        self.__dict__.pop("cells", None)
        self.__dict__.pop("cell_commits", None)
        write_text_atomic(self.path, "".join(_text(e) + "\n" for e in self.entries))


def _text(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _line_digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()[:16]


def read(results: Path) -> Ledger:
    """The ledger, its chain checked (LedgerError naming the first line that breaks it)."""
    path = Path(results) / LEDGER
    if not path.exists():
        return Ledger(path)
    entries, previous = [], ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise LedgerError(f"{path} line {number}: not a JSON entry") from None
        own = {k: v for k, v in entry.items() if k != "sha"}
        if entry.get("prev") != previous or entry.get("sha") != _line_digest(_text(own)) or _text(entry) != line:
            raise LedgerError(
                f"{path} line {number}: edited (its digest does not match its content or the line before it)"
            )
        entries.append(entry)
        previous = entry["sha"]
    return Ledger(path, entries)


# Ledgers (their content and the HEAD they were checked at) already checked against git by this process.
_CHECKED: set[tuple[str, str]] = set()


def checked(results: Path, repo: Path) -> Ledger:
    """The ledger, its chain checked, and every entry's commit and every cell entry checked against git (`verify`,
    `verify_cells`; not the declarations, which `update` re-derives in minutes): a ledger whose chain was rebuilt
    around an entry git does not back is refused before a verdict reads it. Once per process per content and HEAD."""
    ledger = read(results)
    content = hashlib.sha256(ledger.path.read_bytes()).hexdigest() if ledger.path.exists() else ""
    key = (content, _git(repo, "rev-parse", "HEAD").strip())
    if key not in _CHECKED and has_history(repo):  # a shallow clone lacks the history to check it against
        verify(ledger, repo)
        verify_cells(ledger, repo)
        _CHECKED.add(key)
    return ledger


def of_file(path: Path, study: str, hashes_of, seen: list[pd.DataFrame] = ()) -> tuple[Ledger, Path]:
    """The ledger of a study declared in a file outside the package (claims.canonical cannot find it in old checkouts),
    read from that file's own git history, and the repository it is in: an entry per claim per commit that changed the
    file, oldest first, with the hash its declaration had there (`hashes_of`: the file's text -> {claim id: hash}; a
    version that does not read as a study registers nothing). A file outside git, or never committed, registers nothing,
    so its claims are judged post hoc. A cell's first run is the earliest among `seen` (every collected runs table at
    hand, any study's: a cell seen in another study's runs was seen), else among the study's own runs."""
    folder = Path(path).resolve().parent
    try:
        repo = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
    except (LedgerError, OSError):
        return Ledger(Path(os.devnull), _cells_in(seen, folder)), folder
    name = Path(path).resolve().relative_to(repo).as_posix()
    entries = []
    try:
        history = _git(repo, "log", "--reverse", "--format=%H %cI", "--", name).splitlines()
    except LedgerError:  # a repository with no commit yet
        history = []
    for line in history:
        commit, at = line.split()
        try:
            hashes = hashes_of(_git(repo, "show", f"{commit}:{name}"))
        except LedgerError:  # the file as it was there is no study (or is gone)
            continue
        entries += [
            {"kind": "claim", "study": study, "claim": claim, "hash": digest, "at": at, "commit": commit}
            for claim, digest in hashes.items()
        ]
    return Ledger(Path(os.devnull), [*entries, *_cells_in(seen, repo)]), repo


def as_trained(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with data.name the dataset each trained on (data_used: data=mnist without its files trains on mnist5k),
    so that a file study's cells match the runs of any study that trained the same network on the same images, whatever
    dataset it asked for. (The package's own ledger keys cells by the dataset asked for, as its history was built.)"""
    if "data_used" not in runs:
        return runs
    trained = runs.assign(**{"data.name": runs["data_used"].where(runs["data_used"].notna(), runs["data.name"])})
    # whether a missing dataset may fall back changes nothing a run that trained learns
    return trained.drop(columns=["data.strict"], errors="ignore")


def _cells_in(tables: list[pd.DataFrame], repo: Path) -> list[dict]:
    """A cell entry for each cell of the runs in `tables`, as trained, at its earliest run (no commit: git may not hold
    them)."""
    earliest: dict[str, str] = {}
    for runs in map(as_trained, tables):
        for cell, when in zip(cell_keys(runs), _first_runs(repo, runs)):
            if cell not in earliest or when < earliest[cell]:
                earliest[cell] = when
    return [{"kind": "cell", "cell": cell, "first_run_at": when, "commit": ""} for cell, when in earliest.items()]


# -- git ------------------------------------------------------------------------------------------------
def has_history(repo: Path) -> bool:
    """Whether `repo` is a git repository with its whole history (not a shallow clone)."""
    done = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=repo, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "false"


def _git(repo: Path, *args: str, binary: bool = False):
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=not binary)
    if done.returncode:
        raise LedgerError(f"git {' '.join(args[:2])}: {(done.stderr or b'').strip()!s}")
    return done.stdout


def commit_time(repo: Path, commit: str) -> str:
    return _git(repo, "show", "-s", "--format=%cI", commit).strip()


def verify(ledger: Ledger, repo: Path) -> None:
    """Every commit an entry names is in HEAD's history, at the time the entry gives (LedgerError otherwise)."""
    times: dict[str, str] = {}
    for number, e in enumerate(ledger.entries, 1):
        commit = e["commit"]
        if commit not in times:
            ok = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=repo, capture_output=True)
            times[commit] = commit_time(repo, commit) if ok.returncode == 0 else ""
        if times[commit] != e["at"]:
            why = "is not in this repository's history" if not times[commit] else f"was made at {times[commit]}"
            raise LedgerError(
                f"{ledger.path} line {number}: commit {commit[:12]} {why}, not at {e['at']} as the entry says"
            )


def verify_declarations(ledger: Ledger, repo: Path, log=print) -> None:
    """Every claim entry's hash is what its commit declares, re-derived from the checkout at that commit (LedgerError
    otherwise): an entry moved to an earlier commit, its chain rebuilt, would register a claim before it existed."""
    by_commit: dict[str, list[tuple[int, dict]]] = {}
    for number, e in enumerate(ledger.entries, 1):
        if e["kind"] == "claim":
            by_commit.setdefault(e["commit"], []).append((number, e))
    for k, (commit, entries) in enumerate(by_commit.items(), 1):
        log(f"ledger: re-deriving the declarations of {commit[:12]} ({k} of {len(by_commit)})")
        declared = declared_at(repo, commit)
        for number, e in entries:
            if declared.get(e["study"], {}).get(e["claim"]) != e["hash"]:
                raise LedgerError(
                    f"{ledger.path} line {number}: commit {commit[:12]} does not declare {e['study']}.{e['claim']} "
                    f"as {e['hash']}, as the entry says"
                )


def verify_cells(ledger: Ledger, repo: Path) -> None:
    """The cell entries are exactly those a scan of the run tables' history up to the last scanned commit derives, in
    order (LedgerError at the first that is not): a first run moved later, or an earlier one's line removed and the
    chain rebuilt, would make a claim registered that is not."""
    derived, earliest = [], {}
    if ledger.scanned:
        for commit in _git(repo, "log", "--reverse", "--format=%H", ledger.scanned, "--", RUN_TABLES).split():
            for cell, (when, run_id) in cells_at(repo, commit).items():
                if cell not in earliest or when < earliest[cell]:
                    earliest[cell] = when
                    derived.append((cell, when, run_id, commit))
    entries = [(number, e) for number, e in enumerate(ledger.entries, 1) if e["kind"] == "cell"]
    for (number, e), expected in zip(entries, derived):
        if (e["cell"], e["first_run_at"], e["run_id"], e["commit"]) != expected:
            raise LedgerError(
                f"{ledger.path} line {number}: the run tables' history gives cell {expected[0]} first run at {expected[1]} "
                f"({expected[2]}, commit {expected[3][:12]}) here, not cell {e['cell']} at {e['first_run_at']} (commit "
                f"{e['commit'][:12]}) as the entry says"
            )
    if len(entries) != len(derived):
        upto = f"up to {ledger.scanned[:12]}" if ledger.scanned else "(no scan entry: none scanned)"
        raise LedgerError(
            f"{ledger.path}: {len(entries)} cell entries where the run tables' history {upto} gives {len(derived)}"
        )


def _commits(repo: Path, since: str | None, paths, start: str | None = None) -> list[str]:
    """The commits after `since` (else from `start`, else from the first) to HEAD that touch `paths`, oldest first."""
    span = [f"{since}..HEAD"] if since else [f"{start}^..HEAD"] if start else ["HEAD"]
    return _git(repo, "log", "--reverse", "--format=%H", *span, "--", *paths).split()


# -- declarations at a commit ---------------------------------------------------------------------------
def declared_at(repo: Path, commit: str) -> dict[str, dict[str, str]]:
    """{study: {claim: hash}} of the checkout at `commit`, hashed by today's claims.canonical in a process of its own."""
    with tempfile.TemporaryDirectory() as folder:
        archive = _git(repo, "archive", commit, binary=True)
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        done = subprocess.run(
            [sys.executable, canonical.__file__], cwd=folder, capture_output=True, text=True, env=_quiet_env()
        )
    if done.returncode:
        raise LedgerError(f"hashing the claims at {commit[:12]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _quiet_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# -- cells ----------------------------------------------------------------------------------------------
def _value(value):
    """A cell column's value, compared as config.comparable does, with false, none and empty all counting as off (a
    coarser cell, never a finer one: merging two cells can only make a claim more post hoc)."""
    value = config_lib.comparable(value)
    return None if value is False or value in ("none", "None") else value


def training_columns(columns) -> list[str]:
    return sorted(
        c for c in columns if c.startswith(TRAINING) and not any(c.endswith(n) or c == n for n in NOT_TRAINING)
    )


def cell_keys(runs: pd.DataFrame) -> pd.Series:
    """Each run's cell: a digest of its training columns (today's, a column it lacks at today's default)."""
    defaults = stats.config_defaults()
    columns = training_columns(defaults)
    rows = runs.to_dict("records")
    return pd.Series(
        [canonical.digest([_value(config_lib.recorded(row, c, defaults)) for c in columns]) for row in rows],
        index=runs.index,
        dtype=object,
    )


def _first_runs(repo: Path, table: pd.DataFrame) -> pd.Series:
    """Each run's earliest possible start: its sweep folder's time stamp, else its code commit's time, else the epoch."""
    stamps = []
    commits: dict[str, str] = {}
    for folder, commit in zip(table.get("folder", [None] * len(table)), table.get("git_commit", [None] * len(table))):
        found = FOLDER_TIME.findall(str(folder or ""))  # the sweep folder's, the last: a parent may hold a date too
        if found:
            day, h, m, s = found[-1]
            stamps.append(f"{day}T{h}:{m}:{s}+00:00")
        elif isinstance(commit, str) and commit:
            if commit not in commits:
                try:
                    commits[commit] = commit_time(repo, commit)
                except LedgerError:
                    commits[commit] = "1970-01-01T00:00:00+00:00"
            stamps.append(commits[commit])
        else:
            stamps.append("1970-01-01T00:00:00+00:00")
    return pd.Series([_utc(s) for s in stamps], index=table.index)


def _utc(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(timezone.utc).isoformat()


def cells_at(repo: Path, commit: str) -> dict[str, tuple[str, str]]:
    """{cell: (first run, run_id)} over the run tables that `commit` changed."""
    changed = _git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit, "--", RUN_TABLES).split()
    out: dict[str, tuple[str, str]] = {}
    for path in changed:
        try:
            text = _git(repo, "show", f"{commit}:{path}")
        except LedgerError:  # deleted by this commit
            continue
        table = pd.read_csv(io.StringIO(text), low_memory=False)
        if table.empty:
            continue
        for cell, when, run_id in zip(cell_keys(table), _first_runs(repo, table), table["run_id"]):
            if cell not in out or when < out[cell][0]:
                out[cell] = (when, str(run_id))
    return out


# -- update ---------------------------------------------------------------------------------------------
def update(results: Path, repo: Path, log=print) -> Ledger:
    """Scan the commits after the ledger's last scanned one (all since claims became data, for a new ledger) and append
    every claim hash and cell not in it yet; verify it against git first, its declarations re-derived."""
    ledger = read(results)
    verify(ledger, repo)
    verify_declarations(ledger, repo, log)
    verify_cells(ledger, repo)
    head = _git(repo, "rev-parse", "HEAD").strip()
    if ledger.scanned == head:
        return ledger
    known_claims = set(ledger.registered)
    known_cells = dict(ledger.cells)
    declaring = set(_commits(repo, ledger.scanned, DECLARATIONS, FIRST_COMMIT))
    running = set(
        _commits(repo, ledger.scanned, (RUN_TABLES,))
    )  # from the first commit: runs before claims were data count
    ordered = [c for c in _commits(repo, ledger.scanned, ()) if c in declaring or c in running]
    new: list[dict] = []
    for k, commit in enumerate(ordered, 1):
        at = commit_time(repo, commit)
        if commit in declaring:
            for study, claims in declared_at(repo, commit).items():
                for claim, digest in claims.items():
                    if (study, claim, digest) not in known_claims:
                        known_claims.add((study, claim, digest))
                        new.append(
                            {
                                "kind": "claim",
                                "study": study,
                                "claim": claim,
                                "hash": digest,
                                "commit": commit,
                                "at": at,
                            }
                        )
        if commit in running:
            for cell, (when, run_id) in cells_at(repo, commit).items():
                if cell not in known_cells or when < known_cells[cell]["first_run_at"]:
                    known_cells[cell] = entry = {
                        "kind": "cell",
                        "cell": cell,
                        "first_run_at": when,
                        "run_id": run_id,
                        "commit": commit,
                        "at": at,
                    }
                    new.append(entry)
        log(f"[ledger {k}/{len(ordered)}] {commit[:12]} {at}")
    new.append({"kind": "scan", "commit": head, "at": commit_time(repo, head)})
    ledger.append(new)
    return ledger


# -- a claim's registration -----------------------------------------------------------------------------
def current_hashes(studies: dict) -> dict[str, dict[str, str]]:
    """{study: {claim: hash}} of the registry as this code holds it (its experiment files beside it)."""
    return canonical.hashes(studies, Path(canonical.__file__).resolve().parents[2])


def assess(
    ledger: Ledger, study: str, claim, digest: str, runs: pd.DataFrame, repo: Path, trained: bool = False
) -> dict:
    """Whether `claim` (its declaration hashing to `digest`) was registered before every run of the cells it reads in
    `runs`: its registering commit older than the cells' first runs (in the ledger, or in `runs` themselves where earlier
    or not in the ledger yet), and an ancestor, never the same commit, of each commit that first held a cell's runs (so
    a clock cannot make a claim registered that git history does not put first), with no other declaration of it
    committed in between. `trained`: cells keyed as trained (`as_trained`, a study file's ledger: `of_file`)."""
    rows = pd.concat([select(runs, where) for where in claim.depends_on()])
    keys = cell_keys(as_trained(rows) if trained else rows)
    first = min(
        min(_utc(ledger.cells[key]["first_run_at"]) if key in ledger.cells else "9999", when)
        for key, when in zip(keys, _first_runs(repo, rows))
    )
    entry = ledger.registered.get((study, claim.id, digest))
    before = entry is not None and _utc(entry["at"]) < first and not _superseded(ledger, entry, first)
    held_by = sorted({commit for key in set(keys) for commit in ledger.cell_commits.get(key, ())})
    return {
        "hash": digest,
        "registered_at": entry["at"] if entry else None,
        "registered_commit": entry["commit"] if entry else None,
        "first_run_at": first,
        "post_hoc": not (before and all(_strictly_before(repo, entry["commit"], c) for c in held_by)),
    }


def _superseded(ledger: Ledger, entry: dict, first: str) -> bool:
    """Whether another declaration of the claim was first committed after `entry`'s and before its cells' first run: the
    one in force when they ran may not have been this (a switch back is not in the ledger, so it counts as not)."""
    return any(
        e["kind"] == "claim"
        and (e["study"], e["claim"]) == (entry["study"], entry["claim"])
        and e["hash"] != entry["hash"]
        and _utc(entry["at"]) < _utc(e["at"]) < first
        for e in ledger.entries
    )


def late_look(record: dict) -> bool:
    """A registered verdict reached at a look that came in after its registration: registered for one look (5 seeds),
    decided at a later one (claims.sequential.SINCE). Its error is controlled over the looks; its looks were not declared."""
    registered = record["registration"]["registered_at"]
    return (
        not record["post_hoc"]
        and len(record["looks"]) > 1
        and record["outcome"] != "inconclusive"
        and registered is not None
        and _utc(registered) < _utc(sequential.SINCE)
    )


@functools.lru_cache(maxsize=None)
def _strictly_before(repo: Path, earlier: str, later: str) -> bool:
    """Whether commit `earlier` is an ancestor of `later` and not the same commit."""
    if earlier == later:
        return False
    return (
        subprocess.run(["git", "merge-base", "--is-ancestor", earlier, later], cwd=repo, capture_output=True).returncode
        == 0
    )
