"""A study declared in one YAML file (docs/studies.md: the keys, an example): its sweeps (experiment files or grids
declared inline), its arms, its claims and its text, read into the registry's `Study`, judged like any other and drawn
by bn_study.studies.generic.

Everything is checked before any run starts: an unknown key, metric, parameter or arm, a value of the wrong kind, an arm
or a claim's side that no planned run matches, each refused in one line naming the file and the key (StudyFileError,
exit 2).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml
from matplotlib.colors import is_color_like

from bn_study import claims as claims_lib
from bn_study.claims import ledger, sequential
from bn_study.claims.metrics import where_text
from bn_study.render import plots
from bn_study.studies import generic
from bn_study.studies.registry import Grid, Study, UnknownStudy

# The engine's metrics by the name a file gives them (bn_study.claims.metrics: what each reads).
METRICS = {
    "final": claims_lib.Final,
    "at": claims_lib.At,
    "best": claims_lib.Best,
    "steps_to": claims_lib.StepsTo,
    "curve_median": claims_lib.CurveMedian,
    "log_curve_median": claims_lib.LogCurveMedian,
    "mean_gap": claims_lib.MeanGap,
    "unit_drift": claims_lib.UnitDrift,
    "gradient_growth": claims_lib.GradientGrowth,
    "grid_count": claims_lib.GridCount,
    "grid_largest": claims_lib.GridLargest,
    "grid_change": claims_lib.GridChange,
}
# A metric parameter given as a mapping in the file and held as ((column, value), ...) by the metric.
PAIRS = ("target", "baseline")
TOP_KEYS = ("name", "title", "about", "sweeps", "arms", "claims", "figure", "order", "history", "reruns")
REQUIRED = ("name", "title", "sweeps", "arms")
SWEEP_KEYS = ("name", "experiment", "set", "grid", "quick")
ARM_KEYS = ("where", "label", "color")
CLAIM_KEYS = (
    "id",
    "source",
    "sentence",
    "a",
    "b",
    "metric",
    "direction",
    "margin",
    "seed_cap",
    "history",
    "handicap",
    "fair_twin",
)
CLAIM_REQUIRED = ("id", "source", "sentence", "a", "b", "metric", "direction", "margin")
FIGURE_KEYS = ("split", "metric", "x", "curves_where", "caption")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Keys a sweep of a file may not set: which sweep, study version or results folder a run belongs to is the study's to
# say (its name, --quick, --data), and where and how a sweep runs is the launcher's (--launcher).
RESERVED = ("study", "experiment", "quick", "hydra", "paths")
# Metric parameters a file must give: their default reads nothing useful (`at` step 0: before any training).
PARAMETERS_REQUIRED = {"at": ("step",)}


class StudyFileError(UnknownStudy):
    """A study file that cannot be read into a study: one line naming the file and the key."""


@dataclass(frozen=True)
class Arm:
    name: str
    where: dict
    label: str
    color: str


@dataclass(frozen=True)
class Figure:
    """What the generic figures draw: the curves of `split`/`metric` (of the runs `curves_where` selects, if given), the
    final value against the swept key `x` (None: a point per arm and configuration), and a sentence for the caption."""

    split: str = "test"
    metric: str = "accuracy"
    x: str | None = None
    curves_where: tuple = ()
    caption: str = ""


@dataclass(frozen=True)
class Declared:
    """What a study file declares beyond the registry's `Study`: its arms and its figure, for the generic figures."""

    path: Path
    arms: tuple[Arm, ...]
    figure: Figure


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`, whose keys the mapping's own may override
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(path: Path) -> Study:
    """The study declared in the YAML file at `path` (StudyFileError in one line if it is not one)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise StudyFileError(f"{path}: {err.strerror}") from None
    return parse_text(text, path)


def parse_text(text: str, path: Path) -> Study:
    """A study file's text as a Study (StudyFileError in one line if it is not one)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise StudyFileError(f"{path}{line}: not YAML: {getattr(err, 'problem', err)}") from None
    return parse(data, path)


def hashes_of_text(path: Path, text: str) -> dict[str, str]:
    """{claim id: hash} of a study file's text as a commit held it (claims.ledger.of_file); none where it did not read as
    a study then."""
    try:
        study = parse_text(text, path)
    except StudyFileError:
        return {}
    return ledger.current_hashes({study.name: study})[study.name]


def parse(data, path: Path) -> Study:
    """`data`, a study file's content, as a Study (its `declared` holding the arms and the figure)."""
    file = _Reader(path)
    file.mapping("", data, TOP_KEYS, REQUIRED)
    name = file.name("name", data["name"])
    sweeps, grids = file.sweeps(data["sweeps"])
    arms = file.arms(data["arms"])
    claims = file.claims(name, data.get("claims") or [], {arm.name: arm for arm in arms})
    return Study(
        name,
        file.text("title", data["title"]),
        file.text("about", data.get("about", data["title"])),
        sweeps=sweeps,
        grids=grids,
        claims=claims,
        order=file.number("order", data.get("order", 100), whole=True),
        render=generic.build,
        history=file.text("history", data.get("history", "")),
        reruns=file.text("reruns", data.get("reruns", "")),
        declared=Declared(Path(path), arms, file.figure(data.get("figure") or {})),
    )


class _Reader:
    """Reads one file's values, each checked, with the key it came from in any error."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, message: str) -> StudyFileError:
        return StudyFileError(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")

    def mapping(self, key: str, value, allowed: tuple[str, ...] | None = None, required: tuple[str, ...] = ()) -> dict:
        """`value`, a mapping of text keys (of `allowed` only, where given) holding every `required` one."""
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping of {', '.join(allowed)}" if allowed else "must be a mapping")
        for k in value:
            if not isinstance(k, str) or (allowed is not None and k not in allowed):
                what = f"allowed: {', '.join(allowed)}" if allowed else "a key is text"
                raise self.error(f"{key}.{k}" if key else str(k), f"unknown key; {what}")
        for k in required:
            if k not in value:
                raise self.error(f"{key}.{k}" if key else k, "missing")
        return value

    def sequence(self, key: str, value) -> list:
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        return value

    def text(self, key: str, value) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be text, not {value!r}")
        return value

    def name(self, key: str, value) -> str:
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise self.error(key, f"{value!r} must be a name of letters, digits and _, starting with a letter")
        return value

    def number(self, key: str, value, whole: bool = False):
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise self.error(key, f"must be a {'whole number' if whole else 'number'}, not {value!r}")
        return value

    def choice(self, key: str, value, allowed) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.error(key, f"{value!r}; allowed: {', '.join(allowed)}")
        return value

    def sweeps(self, value) -> tuple[tuple[str, ...], tuple[Grid, ...]]:
        names, grids = [], []
        for i, sweep in enumerate(self.sequence("sweeps", value)):
            key = f"sweeps[{i}]"
            if isinstance(sweep, str):
                names.append(self.name(key, sweep))
                continue
            self.mapping(key, sweep, SWEEP_KEYS, ("name",))
            name = self.name(f"{key}.name", sweep["name"])
            parts = {part: self.overrides(f"{key}.{part}", sweep.get(part) or {}) for part in ("set", "grid", "quick")}
            for k in parts["quick"]:
                if k not in parts["set"] and k not in parts["grid"]:
                    raise self.error(f"{key}.quick.{k}", "changes a key its set or grid does not give")
            if "data" in parts["grid"]:
                raise self.error(f"{key}.grid.data", "a study runs one dataset; another is its own version (--data)")
            experiment = sweep.get("experiment")
            grid = Grid(
                name,
                None if experiment is None else self.name(f"{key}.experiment", experiment),
                *(tuple(parts[part].items()) for part in ("set", "grid", "quick")),
            )
            names.append(name)
            grids.append(grid)
        if not names:
            raise self.error("sweeps", "must name at least one sweep")
        if len(set(names)) < len(names):
            raise self.error("sweeps", f"a sweep is named twice: {', '.join(names)}")
        return tuple(names), tuple(grids)

    def overrides(self, key: str, value) -> dict:
        """A sweep's `set`, `grid` or `quick`: config keys (none of RESERVED) and their values, a list a swept one's."""
        for k, v in self.mapping(key, value).items():
            if re.split(r"[./]", k.lstrip("+~"))[0] in RESERVED:
                raise self.error(
                    f"{key}.{k}",
                    "not a file's to set: its sweeps, --quick, --data and --launcher say where a run belongs",
                )
            if isinstance(v, (dict, list)) and (isinstance(v, dict) or any(isinstance(x, (dict, list)) for x in v)):
                raise self.error(f"{key}.{k}", f"must be a value or a list of values, not {v!r}")
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}

    def arms(self, value) -> tuple[Arm, ...]:
        arms = []
        for i, (name, arm) in enumerate(self.mapping("arms", value).items()):
            key = f"arms.{name}"
            self.name(key, name)
            self.mapping(key, arm, ARM_KEYS, ("where",))
            where = self.mapping(f"{key}.where", arm["where"])
            if not where:
                raise self.error(f"{key}.where", "must select runs by at least one config column")
            color = self.text(f"{key}.color", arm.get("color", plots.CYCLE[i % len(plots.CYCLE)]))
            if not is_color_like(color):
                raise self.error(f"{key}.color", f"{color!r} is not a colour (a name such as 'tab:blue', or '#1f77b4')")
            arms.append(Arm(name, dict(where), self.text(f"{key}.label", arm.get("label", name)), color))
        if not arms:
            raise self.error("arms", "must name at least one arm")
        return tuple(arms)

    def claims(self, study: str, value, arms: dict[str, Arm]) -> tuple:
        claims = tuple(self.claim(f"claims[{i}]", c, arms) for i, c in enumerate(self.sequence("claims", value)))
        ids = [c.id for c in claims]
        for i, claim in enumerate(claims):
            if not claim.id.startswith(f"{study}."):
                raise self.error(
                    f"claims[{i}].id", f"{claim.id!r} must be {study}.<name>: ids are unique across studies"
                )
            if ids.count(claim.id) > 1:
                raise self.error(f"claims[{i}].id", f"{claim.id} is the id of another claim of this file")
        return claims

    def claim(self, key: str, value, arms: dict[str, Arm]) -> claims_lib.Claim:
        self.mapping(key, value, CLAIM_KEYS, CLAIM_REQUIRED)
        names = [self.choice(f"{key}.{side}", value[side], arms) for side in ("a", "b")]
        if names[0] == names[1]:
            raise self.error(f"{key}.b", f"{names[1]} is side a too: a claim compares two arms")
        sides = [claims_lib.Side(arms[name].label, dict(arms[name].where)) for name in names]
        margin = self.number(f"{key}.margin", value["margin"])
        seed_cap = self.number(f"{key}.seed_cap", value.get("seed_cap", sequential.DEFAULT_CAP), whole=True)
        return claims_lib.Claim(
            self.text(f"{key}.id", value["id"]),
            self.text(f"{key}.source", value["source"]),
            self.text(f"{key}.sentence", value["sentence"]),
            *sides,
            self.metric(f"{key}.metric", value["metric"]),
            self.choice(f"{key}.direction", value["direction"], claims_lib.DIRECTIONS),
            margin=margin,
            seed_cap=seed_cap,
            **{k: self.text(f"{key}.{k}", value[k]) for k in ("history", "handicap", "fair_twin") if k in value},
        )

    def metric(self, key: str, value) -> claims_lib.Metric:
        self.mapping(key, value, required=("kind",))
        kind = self.choice(f"{key}.kind", value["kind"], METRICS)
        cls = METRICS[kind]
        hints = typing.get_type_hints(cls)
        fields = [f.name for f in dataclasses.fields(cls)]
        params = {k: v for k, v in self.mapping(key, value, ("kind", *fields)).items() if k != "kind"}
        for name in PARAMETERS_REQUIRED.get(kind, ()):
            if name not in params:
                raise self.error(f"{key}.{name}", f"missing: {kind} needs it")
        return cls(
            **{name: self.parameter(f"{key}.{name}", given, name, hints[name]) for name, given in params.items()}
        )

    def parameter(self, key: str, value, name: str, hint):
        """A metric parameter as its field holds it: a mapping as (column, value) pairs, a number as given (64 stays 64,
        as a module would write it: the claim's hash reads it so), text otherwise; empty only where it may be."""
        if name in PAIRS:
            return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in self.mapping(key, value).items())
        kinds = typing.get_args(hint) or (hint,)
        if value is None:
            if type(None) in kinds:
                return None
            raise self.error(key, "must not be empty")
        if float in kinds or int in kinds:
            return self.number(key, value, whole=float not in kinds)
        return self.text(key, value)

    def figure(self, value) -> Figure:
        self.mapping("figure", value, FIGURE_KEYS)
        given = {k: v for k, v in value.items() if v is not None}
        where = self.mapping("figure.curves_where", given.pop("curves_where", {}))
        return Figure(**{k: self.text(f"figure.{k}", v) for k, v in given.items()}, curves_where=tuple(where.items()))


def check_plan(study: Study, planned) -> None:
    """Refuse, in one line naming the key, what only the planned runs can tell is wrong: an arm or a filter naming a
    column they lack or matching none of them, a figure of a split or metric no run logs, and a claim's side that holds
    several runs per seed (a side compares one run per seed, unless its metric reads a grid)."""
    declared = study.declared
    figure = declared.figure
    for key, where in [
        *((f"arms.{arm.name}.where", arm.where) for arm in declared.arms),
        *([("figure.curves_where", dict(figure.curves_where))] if figure.curves_where else []),
    ]:
        _matching(declared.path, key, where, planned)
    if figure.x is not None and figure.x not in planned.columns:
        raise StudyFileError(
            f"{declared.path}: figure.x: no column {figure.x}; the runs have {', '.join(_config_columns(planned))}"
        )
    if not any((figure.split, figure.metric) in s or (figure.split, "*") in s for s in planned["splits"]):
        logged = sorted({f"{split}/{metric}" for s in planned["splits"] for split, metric in s if metric != "*"})
        raise StudyFileError(
            f"{declared.path}: figure: no run logs {figure.split}/{figure.metric}; they log {', '.join(logged)}"
        )
    for i, claim in enumerate(study.claims):
        for side, name in ((claim.a, "a"), (claim.b, "b")):
            if claim.metric_of(side).grid is not None:
                continue
            rows = claims_lib.select(planned, side.where)
            per_seed = int(rows.groupby("seed").size().max()) if len(rows) else 0
            if per_seed > 1:
                differ = [c for c in _config_columns(rows) if c != "seed" and rows[c].astype(str).nunique() > 1]
                raise StudyFileError(
                    f"{declared.path}: claims[{i}].{name}: its arm selects {per_seed} runs per seed (they differ in "
                    f"{', '.join(differ)}); a side compares one run per seed: narrow its where"
                )


def _matching(path: Path, key: str, where: dict, planned) -> None:
    for column in where:
        if column not in planned.columns:
            raise StudyFileError(
                f"{path}: {key}: no column {column}; the runs have {', '.join(_config_columns(planned))}"
            )
    if claims_lib.select(planned, where).empty:
        varied = {c: sorted({str(v) for v in planned[c]}) for c in where}
        runs = "; ".join(f"{c} in {{{', '.join(v)}}}" for c, v in varied.items())
        raise StudyFileError(f"{path}: {key}: {where_text(where)} matches none of the planned runs ({runs})")


def _config_columns(planned) -> list[str]:
    return [c for c in planned.columns if c not in claims_lib.LOGGED]


def is_file(name: str) -> bool:
    """Whether a study is named by its file (a path ending in .yaml) rather than by its name."""
    return name.endswith(".yaml")
