"""`hydra/sweeper=bn_study`: the basic grid sweeper, owning its folder for the whole sweep, with every job
checked and recorded before any runs. `hydra.sweeper.jobs=<file>` runs the job list a JSON file holds (each job its
full override list) instead of the grid: the seeds a study's claims ask for at their next look."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # noqa: PLC2701 (a sweeper plugin extends it)
from hydra.core.config_store import ConfigStore

from bn_study.sweep import manifest as sweep
from bn_study.sweep import ownership, scheduler


@dataclass
class BNStudySweeperConf:
    _target_: str = "hydra_plugins.bn_study_sweeper.sweeper.BNStudySweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    jobs: Optional[str] = None


ConfigStore.instance().store(group="hydra/sweeper", name="bn_study", node=BNStudySweeperConf, provider="bn_study")


class BNStudySweeper(BasicSweeper):
    def __init__(
        self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None, jobs: Optional[str] = None
    ):
        super().__init__(max_batch_size, params)
        self.jobs_file = jobs

    def split_arguments(self, overrides: List[Any], max_batch_size: Optional[int]) -> List[List[List[str]]]:
        if self.jobs_file is None:
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        jobs = sweep.job_list(Path(self.jobs_file))
        size = max_batch_size or len(jobs) or 1
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]

    def sweep(self, arguments: List[str]) -> Any:
        # Owned before Hydra writes multirun.yaml into it: a second copy of the sweep must not touch it.
        sweep_dir = scheduler.prepare(self.config, self.launcher)
        sweep.WORKING["sweep"] = sweep_dir
        with ownership.owned(sweep_dir, f"hydra.sweep.dir={sweep_dir}"):  # refused here if another process owns it
            try:
                with scheduler.watched(sweep_dir, self.config):
                    return super().sweep(arguments)
            except Exception:
                sweep.remove_if_fresh(sweep_dir)  # refused while parsing or checking the grid: leave no folder
                raise

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if self.batch_index > 1:  # the whole sweep was checked with the first batch
            return super().validate_batch_is_legal(batch)

        def compose(overrides: list) -> Any:
            return self.hydra_context.config_loader.load_sweep_config(self.config, overrides)

        jobs = [list(job) for chunk in self.overrides for job in chunk]
        sweep.check_and_record(Path(self.config.hydra.sweep.dir), jobs, self.config, compose)
