"""Every command README.md and docs/ show works as shown: its make targets exist, its bn-study commands compose and
pass every check (each job of a grid), the other CLIs accept their arguments, the error examples print
exactly what they show, and its Python runs. A command of a kind this file does not know fails the test."""

import contextlib
import io
import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType

from bn_study.cli import bench, bench_cnn, bench_quick, bench_studies, plot, verify
from bn_study.cli import studies as studies_cli
from bn_study.run.preflight import checked
from bn_study.studies import declaration
from bn_study.studies.registry import Version, studies
from tests.conftest import REPO, cli, compose_run

# README and the reference pages it sends readers to: one text, checked alike.
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README = "\n".join(page.read_text() for page in PAGES)
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
# Commands shown that this test does not run, and why.
NOT_RUN = {
    "pip": "installs packages: `make install` does what the tests need",
    ".venv/bin/pip": "installs packages",
    ".venv/bin/papermill": "tests/e2e/test_notebooks.py executes every notebook with papermill",
}
ARGPARSE_CLIS = {
    "bn-study-collect": studies_cli.collect_command,
    "bn-study-studies": studies_cli.main,
    "bn-study-verify": verify.main,
    "bn-study-bench": bench.main,
    "bn-study-bench-cnn": bench_cnn.main,
    "bn-study-bench-studies": bench_studies.main,
    "bn-study-bench-quick": bench_quick.main,
    "bn-study-plot": plot.main,
}


def _shell_commands() -> list[str]:
    """Each command line of the bash blocks, and each inline `make ...` / `bn-study ...` with no placeholder."""
    found = [
        line.strip()
        for lang, body in FENCE.findall(README)
        if lang == "bash"
        for line in body.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    prose = FENCE.sub("", README)
    found += [
        " ".join(span.split())
        for span in re.findall(
            r"`((?:QUICK=1 )?(?:make|bn-study[\w-]*|python -m bn_study|\.venv/bin/\w+|pip)(?: [^`]*)?)`", prose
        )
    ]
    return [c for c in dict.fromkeys(found) if "<" not in c]  # `make <study>` is a template, not a command


def _make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, re.M)) | set(studies())


def _jobs(args: list[str]) -> list[list[str]]:
    """Jobs of a multirun covering every swept value (the first job, then each other value alone): the
    sweeper itself checks the whole grid, and its tests check that it does."""
    parsed = OverridesParser.create().parse_overrides(args)
    choices = [_values(o) for o in parsed]
    first = [values[0] for values in choices]
    return [first] + [first[:i] + [value] + first[i + 1 :] for i, values in enumerate(choices) for value in values[1:]]


def _values(override) -> list[str]:
    """Each value a swept override takes; a search's interval (Optuna's): its two ends."""
    key = override.get_key_element()
    if override.value_type == ValueType.INTERVAL_SWEEP:
        return [f"{key}={override.value().start}", f"{key}={override.value().end}"]
    if override.is_sweep_override():
        return [f"{key}={v}" for v in override.sweep_string_iterator()]
    return [override.input_line]


def _check(command: str) -> None:
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words.pop(0)  # QUICK=1
    program, args = words[0], words[1:]
    if program in NOT_RUN:
        return
    if program == "make":
        targets = [a for a in args if "=" not in a]
        assert set(targets) <= _make_targets(), f"{command}: no such make target"
    elif program in ("bn-study", "python") and args[-1:] == ["--help"]:
        proc = cli(*args[2:] if program == "python" else args)
        assert proc.returncode == 0 and "== Config groups (group=option) ==" in proc.stdout, proc.stderr
    elif program in ("bn-study", "python"):
        args = args[2:] if program == "python" else args  # python -m bn_study
        if args[:2] == ["--cfg", "job"]:
            args = args[2:]
        jobs = _jobs(args[1:]) if args[:1] == ["-m"] else [args]
        for job in jobs:
            checked(compose_run(*job))
    elif program in ARGPARSE_CLIS:
        with pytest.raises(SystemExit) as parsed, contextlib.redirect_stdout(io.StringIO()):
            ARGPARSE_CLIS[program]([*args, "--help"])  # argparse checks the arguments before it reaches --help
        assert parsed.value.code == 0, command
        if program == "bn-study-studies":
            names = [a for a in args[1:] if not a.startswith("-")]
            files = [a for a in names if declaration.is_file(a)]
            assert set(names) - set(files) <= set(studies()), f"{command}: no such study"
            for path in files:  # a study file the docs show: it is there, and checks
                assert studies_cli.check(declaration.load(REPO / path), Version()) is not None
    else:
        pytest.fail(f"README shows `{command}`, a command this test does not know how to check")


COMMANDS = _shell_commands()


def test_the_readme_shows_the_commands_this_test_checks():
    programs = {shlex.split(c, comments=True)[0] for c in COMMANDS}
    assert {"make", "bn-study", "bn-study-collect", "bn-study-verify"} <= programs and len(COMMANDS) >= 25


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split("#")[0].strip() for c in COMMANDS])
def test_every_readme_command_works_as_shown(command):
    _check(command)


def _error_examples() -> list[tuple[str, str]]:
    """The `$ bn-study ...` lines of the README's plain blocks, each with the line it shows printed."""
    examples = []
    for lang, body in FENCE.findall(README):
        lines = body.splitlines()
        examples += [
            (line[2:], lines[i + 1]) for i, line in enumerate(lines) if not lang and line.startswith("$ bn-study ")
        ]
    return examples


@pytest.mark.parametrize(
    "command, shown", _error_examples(), ids=lambda value: value if value.startswith("bn-study ") else ""
)
def test_the_readme_error_examples_print_what_they_show(tmp_path, command, shown):
    proc = cli(*shlex.split(command)[1:], f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stderr.strip() == shown
    assert not (tmp_path / "run").exists()


def test_the_readme_python_runs(monkeypatch):
    monkeypatch.chdir(REPO)
    blocks = [body for lang, body in FENCE.findall(README) if lang == "python"]
    assert blocks
    for body in blocks:
        exec(compile(body, "README.md", "exec"), {})
