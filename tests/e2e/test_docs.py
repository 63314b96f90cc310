"""What the pages and help texts name exists, and stays so: every link resolves to a file inside the repository, every
bn-study command is an installed console script, every `make` target is the Makefile's, no page types a runtime that
the committed runs or the bench should give, and the generated configuration reference matches the schema."""

import re
import tomllib

import pytest

from bn_study.config import reference
from bn_study.studies import report
from bn_study.studies.registry import studies
from tests.conftest import REPO

PAGES = report.pages(REPO)
RENDERED = [REPO / "results" / "REPORT.md", *sorted((REPO / "results").glob("*/summary.md"))]
# Where commands are named to a user outside the pages: the help texts and the commands' own docstrings.
HELP = [
    REPO / "Makefile",
    *sorted((REPO / "bn_study" / "conf" / "hydra" / "help").glob("*.yaml")),
    *sorted((REPO / "bn_study" / "cli").glob("*.py")),
    *sorted((REPO / "bn_study" / "conf" / "experiment").glob("*.yaml")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")
SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
TARGETS = set(re.findall(r"^([a-zA-Z0-9_-]+):", (REPO / "Makefile").read_text(), re.M)) | set(studies())


def _name(path):
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES + RENDERED, ids=_name)
def test_every_link_resolves_to_a_file_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith("#"):
            continue
        assert not re.match(r"^[a-z]+:", target), f"{_name(page)}: {target} leaves the repository"
        found = (page.parent / target.split("#")[0]).resolve()
        assert found.exists() and REPO in found.parents, f"{_name(page)}: {target} is not a file of the repository"


@pytest.mark.parametrize("text", PAGES + HELP, ids=_name)
def test_every_command_and_target_named_exists(text):
    body = text.read_text()
    commands = set(re.findall(r"\bbn-study(?:-[a-z]+)+\b", body))
    assert commands <= SCRIPTS, f"{_name(text)} names {sorted(commands - SCRIPTS)}, not a console script"
    targets = {t for t in re.findall(r"\bmake ([a-z][a-z0-9_-]*)\b", body)}
    assert targets <= TARGETS, f"{_name(text)} names make {sorted(targets - TARGETS)}, not a target or study"


@pytest.mark.parametrize("text", PAGES + HELP, ids=_name)
def test_no_page_types_a_runtime(text):
    """A time written by hand drifts from the runs; README's tables and the bench's summaries are generated."""
    typed = re.findall(
        r"(?:about|~) ?\d[\d.,]* ?(?:s|sec|seconds|min|minutes|h|hours)\b|\d (?:minutes|hours) (?:here|on)",
        text.read_text(),
    )
    assert typed == [], f"{_name(text)} types a runtime: {typed}"


def test_the_configuration_reference_is_generated_from_the_schema():
    assert (REPO / reference.PAGE).read_text() == reference.markdown(), (
        "docs/configuration.md is stale: python -m bn_study.config.reference"
    )
