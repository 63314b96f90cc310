"""Real clusters started on this machine for `make test-slurm` and `make test-ray`: a one-node SLURM cluster with
accounting (tests/clusters/slurm.sh) and a Ray head, each stopped by the pids it started. Not in the fast suite or
`make test-slow` (marker `cluster`): they need root and Debian's SLURM packages, or minutes of a Ray head."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SLURM_SCRIPT = REPO / "tests" / "clusters" / "slurm.sh"
# Where `ray start --head` writes the address that `address=auto` (and a plain local ray.init()) looks up.
RAY_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")


def bn_study(*args: str, cwd: Path, env: dict, timeout: int = 600, program: str = "bn-study"):
    """A console script of this venv, run as a user would, from `cwd`."""
    return subprocess.run(
        [str(Path(sys.executable).parent / program), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> dict:
    """The environment in which SLURM's commands (sbatch, squeue, scancel) reach the test cluster."""
    folder = tmp_path_factory.mktemp("slurm")
    try:
        up = subprocess.run(["bash", str(SLURM_SCRIPT), "up", str(folder)], capture_output=True, text=True, timeout=180)
        failed = up.stderr.strip() if up.returncode != 0 else None
    except subprocess.TimeoutExpired:
        failed = "not up within 3 minutes"
    if failed is not None:  # stop what did start
        subprocess.run(["bash", str(SLURM_SCRIPT), "down", str(folder)], capture_output=True, text=True)
        pytest.fail(f"the SLURM cluster did not start: {failed}", pytrace=False)
    conf = up.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    try:
        yield {**os.environ, "SLURM_CONF": conf, "PYTHONUNBUFFERED": "1"}
    finally:
        down = subprocess.run(["bash", str(SLURM_SCRIPT), "down", str(folder)], capture_output=True, text=True)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory) -> dict:
    """A Ray head (`ray start --head --block`), stopped by its pid: SIGTERM, on which it drains and stops every
    process it started (its group killed only if it has not within a minute)."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.fail("Ray is not installed: pip install 'bn-study[ray]'", pytrace=False)
    log_path = tmp_path_factory.mktemp("ray") / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [
                str(ray),
                "start",
                "--head",
                "--block",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([str(ray), "status"], env=env, capture_output=True).returncode != 0:
            assert head.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(1)
        yield env
    finally:
        address = RAY_ADDRESS_FILE.read_text() if RAY_ADDRESS_FILE.exists() else None  # the head's, while it runs
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        # the head's address, which it leaves behind: a later local ray.init() would try to join the stopped head
        if address is not None and RAY_ADDRESS_FILE.exists() and RAY_ADDRESS_FILE.read_text() == address:
            RAY_ADDRESS_FILE.unlink()
