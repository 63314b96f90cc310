"""bn-study as a user installs it: a wheel built from the clone, in a fresh venv, run from a folder outside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY


def _run(*args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the venv decides what is imported
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; its dependencies are this venv's (a .pth line, so nothing is
    downloaded and the clone's editable install is not seen: .pth files of an added path are not read)."""
    root = tmp_path_factory.mktemp("package")
    left = not (REPO / "build").exists()  # setuptools builds in the source tree: take away what this test made
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        root / "dist",
        REPO,
        cwd=root,
    )
    if left:
        shutil.rmtree(REPO / "build", ignore_errors=True)
    wheel = next((root / "dist").glob("bn_study-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bn_study/conf/config.yaml" in names and "bn_study/conf/experiment/fig1.yaml" in names, names
    assert zipfile.ZipFile(wheel).read("bn_study/constraints.txt") == (REPO / "constraints.txt").read_bytes()
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=root)
    python = venv / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).stdout.strip()
    (Path(site) / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=root)
    return venv


@pytest.mark.slow
def test_the_wheel_runs_a_run_and_a_sweep_outside_the_clone(installed, tmp_path):
    bin_ = installed / "bin"
    where = _run(
        bin_ / "python",
        "-c",
        "import bn_study, bn_study.config; print(bn_study.__file__); print(bn_study.config.CONF_DIR)",
        cwd=tmp_path,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), where  # the installed copy, not the clone's

    _run(bin_ / "bn-study", *TINY, "trainer.steps=20", "study=outside", "paths.results=out", cwd=tmp_path)
    (run_json,) = (tmp_path / "out" / "outside" / "runs").glob("*/run.json")
    assert json.loads(run_json.read_text())["status"] == "done"

    _run(
        bin_ / "bn-study",
        "-m",
        *TINY,
        "trainer.steps=20",
        "study=outside",
        "seed=0,1",
        f"paths.results={tmp_path / 'abs'}",
        cwd=tmp_path,
    )
    runs = sorted((tmp_path / "abs" / "outside" / "sweeps").glob("*/*/run.json"))
    assert [json.loads(p.read_text())["config"]["seed"] for p in runs] == [0, 1]
    # the installed commands collect and draw an ad-hoc sweep, no clone needed
    _run(bin_ / "bn-study-collect", "outside", "--results", tmp_path / "abs", cwd=tmp_path)
    _run(bin_ / "bn-study-plot", "outside", "--results", tmp_path / "abs", "--by", "model.bn", cwd=tmp_path)
    assert (tmp_path / "abs" / "outside" / "plot_test_accuracy.png").stat().st_size > 0
    assert not (tmp_path / "results").exists() and not (REPO / "results" / "outside").exists()

    # A user's own builder, a module in the folder the console script runs from.
    (tmp_path / "mybuilders.py").write_text((REPO / "tests" / "builders.py").read_text())
    _run(
        bin_ / "bn-study",
        *TINY,
        "trainer.steps=20",
        "study=outside",
        "model._target_=mybuilders.wide_then_narrow",
        "model.name=mine",
        f"hydra.run.dir={tmp_path / 'mine'}",
        cwd=tmp_path,
    )
    assert json.loads((tmp_path / "mine" / "run.json").read_text())["probe"].startswith("input of dense2_act")
