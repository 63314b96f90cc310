"""Check a results folder after a crash, a copy or a hand edit: is everything in it what it says it is?

    bn-study-verify                     # everything under results/
    bn-study-verify results/fig1 DIR    # only these folders

- every finished run (done or diverged): its curves.csv against what run.json recorded on closing (runs
  made before runs recorded a checksum: every row whole, every series measured to the last step, the
  final accuracy; they are counted apart);
- every collection (a study folder's runs.csv, curves.parquet, by_config.csv): against its collection.json;
- every study's rendered outputs (verdicts.json, figures, CSVs, summary.md): against its rendered.json, and drawn
  from the collection beside them;
- unfinished work is listed: runs interrupted (their process is gone), failed or running now, jobs of a
  sweep.json that no run folder holds, temporary files a killed write left.

Exit status 0 when everything finished verifies (unfinished runs are not errors: rerunning their sweep
redoes them), 1 when anything is torn, edited or unreadable, 2 for a path that does not exist.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bn_study import files
from bn_study.claims.verdicts import VERDICTS
from bn_study.render import outputs as rendered
from bn_study.run import records
from bn_study.run.records import RUN_JSON
from bn_study.sweep import manifest as sweep
from bn_study.sweep import ownership
from bn_study.tables import collect


@dataclass
class Findings:
    runs: int = 0  # finished runs that verify
    unchecksummed: int = 0  # of which made before runs recorded a checksum of their curves
    collections: int = 0  # collections that verify
    rendered: int = 0  # study folders whose figures and verdicts are those rendered from the collection beside them
    unfinished: list[str] = field(default_factory=list)  # "folder: why", not errors
    problems: list[str] = field(default_factory=list)  # "folder: what is wrong"


def check(root: Path, found: Findings | None = None) -> Findings:
    """Every run folder and collection below `root` (or `root` itself), checked."""
    found = found or Findings()
    root = Path(root)
    for run_json in sorted(root.rglob(RUN_JSON)):
        _check_run(run_json.parent, found)
    for manifest in sorted(root.rglob(sweep.MANIFEST)):
        found.unfinished += sweep.unstarted(manifest.parent)
    found.unfinished += [
        f"{tmp}: left by a write that was killed; safe to delete (the folder's next owner removes it)"
        for tmp in sorted(root.rglob(f".*{files.TMP_SUFFIX}"))
    ]
    collections = {p.parent for name in (collect.RUNS_TABLE, collect.MANIFEST) for p in _found(root, name)}
    for folder in sorted(collections):
        try:
            collect.verify(folder)
            found.collections += 1
        except collect.TornCollection as err:
            found.problems.append(str(err))
    for folder in sorted({p.parent for name in (rendered.MANIFEST, VERDICTS) for p in _found(root, name)}):
        try:
            found.rendered += bool(rendered.check(folder))
        except rendered.Stale as err:
            found.problems.append(str(err))
    return found


def _found(root: Path, name: str) -> list[Path]:
    """The files called `name` below `root`, but for those in the hidden folders of unfinished writes (a killed render's
    staging folder): those are listed as unfinished, with the other temporary files."""
    return [p for p in root.rglob(name) if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])]


def _check_run(folder: Path, found: Findings) -> None:
    try:
        record = records.read_run(folder)
        status = record["status"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        found.problems.append(f"{folder}: {RUN_JSON} unreadable ({type(err).__name__})")
        return
    if status in ("done", "diverged"):
        try:
            records.verified_curves(folder, record)
            found.runs += 1
            found.unchecksummed += "curves" not in record
        except records.Unverified as err:
            found.problems.append(f"{folder}: {err}; rerun its sweep to redo it")
    elif status == "running":
        found.unfinished.append(f"{folder}: {ownership.still_running(folder)}")
    else:
        found.unfinished.append(f"{folder}: {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, default=[collect.RESULTS], help="folders to check (default: results)"
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.is_dir()]
    if missing:
        print(f"bn-study-verify: error: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = Findings()
    for path in args.paths:
        check(path, found)
    for line in found.unfinished:
        print(f"unfinished {line}")
    for line in found.problems:
        print(f"FAILS {line}")
    verdict = f"{len(found.problems)} problem(s)" if found.problems else "everything finished verifies"
    older = f" ({found.unchecksummed} made before runs recorded checksums)" if found.unchecksummed else ""
    print(
        f"bn-study-verify: {found.runs} finished runs{older}, {found.collections} collections and {found.rendered} studies' rendered outputs verify, "
        f"{len(found.unfinished)} unfinished; {verdict}"
    )
    return 1 if found.problems else 0


if __name__ == "__main__":
    sys.exit(main())
