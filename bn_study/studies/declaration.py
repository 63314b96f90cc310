"""A study declared in one YAML file: its sweeps, its arms, its claims and its text, read into the registry's `Study`
and judged and drawn like any other (the figures by bn_study.studies.generic).

    name: adam_placement                  # results/<name>/ (letters, digits, _)
    title: BN before vs after the activation, with Adam
    about: one line for `bn-study-studies list` and the report
    sweeps:
      - input_bn                          # an experiment file (bn_study/conf/experiment/<name>.yaml)
      - name: adam_cnn                    # or a grid declared here, into results/adam_cnn/
        experiment: keras_blog            #   the experiment file it starts from (optional)
        set: {optimizer: adam, optimizer.lr: 0.001, trainer.steps: 2000}
        grid: {model.bn: [before, after], seed: [0, 1, 2, 3, 4]}
        quick: {trainer.steps: 20, seed: [0, 1]}    #   what QUICK=1 changes, in set or grid
    arms:                                 # named runs: a config filter, a label, a colour
      before: {where: {model.bn: before}, label: BN before the activation}
      after: {where: {model.bn: after}, label: BN after the activation, color: "#2ca02c"}
    claims:
      - id: adam_placement.after            # <study>.<name>
        source: Keras blog
        sentence: BN after the activation trains as well as before it.
        a: after                          # arm names
        b: before
        metric: {kind: final, split: test, name: accuracy}   # a metric of METRICS and its parameters
        direction: not_lower              # higher, lower, not_lower
        margin: 0.005
    figure: {split: test, metric: accuracy, x: null}   # the curves drawn; x: a swept key for the final panel

Everything is checked before any run starts: an unknown key, metric, parameter or arm, a value of the wrong kind, an arm
or a claim's side that no planned run matches, each refused in one line naming the key (StudyFileError, exit 2).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from bn_study import claims as claims_lib
from bn_study.claims import sequential
from bn_study.claims.metrics import where_text
from bn_study.config import CONF_DIR
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
FIGURE_KEYS = ("split", "metric", "x")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


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
    """What the generic figures draw: the curves of `split`/`metric`, and the final value against the swept key `x`
    (None: one point per arm)."""

    split: str = "test"
    metric: str = "accuracy"
    x: str | None = None


@dataclass(frozen=True)
class Declared:
    """What a study file declares beyond the registry's `Study`: its arms and its figure, for the generic figures."""

    path: Path
    arms: tuple[Arm, ...]
    figure: Figure


def load(path: Path) -> Study:
    """The study declared in the YAML file at `path` (StudyFileError in one line if it is not one)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise StudyFileError(f"{path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise StudyFileError(f"{path}{line}: not YAML: {getattr(err, 'problem', err)}") from None
    return parse(data, path)


def parse(data, path: Path) -> Study:
    """`data`, a study file's content, as a Study (its `declared` holding the arms and the figure)."""
    file = _Reader(path)
    file.mapping("", data, TOP_KEYS, REQUIRED)
    name = file.name("name", data["name"])
    sweeps, grids = file.sweeps(data["sweeps"])
    arms = file.arms(data["arms"])
    by_name = {arm.name: arm for arm in arms}
    claims = tuple(
        file.claim(f"claims[{i}]", c, by_name) for i, c in enumerate(file.sequence("claims", data.get("claims") or []))
    )
    figure = data.get("figure") or {}
    file.mapping("figure", figure, FIGURE_KEYS)
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
        declared=Declared(
            Path(path),
            arms,
            Figure(**{k: file.text(f"figure.{k}", v) for k, v in figure.items() if v is not None}),
        ),
    )


class _Reader:
    """Reads one file's values, each checked, with the key it came from in any error."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, message: str) -> StudyFileError:
        return StudyFileError(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")

    def mapping(self, key: str, value, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping of {', '.join(allowed)}")
        for k in value:
            if k not in allowed:
                raise self.error(f"{key}.{k}" if key else str(k), f"unknown key; allowed: {', '.join(allowed)}")
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

    def sweeps(self, value) -> tuple[tuple[str, ...], tuple[Grid, ...]]:
        names, grids = [], []
        for i, sweep in enumerate(self.sequence("sweeps", value)):
            key = f"sweeps[{i}]"
            if isinstance(sweep, str):
                names.append(self.name(key, sweep))
                continue
            self.mapping(key, sweep, SWEEP_KEYS, ("name",))
            overrides = {
                part: self.mapping(f"{key}.{part}", sweep.get(part) or {}, tuple(sweep.get(part) or {}))
                for part in ("set", "grid", "quick")
            }
            for k in overrides["quick"]:
                if k not in overrides["set"] and k not in overrides["grid"]:
                    raise self.error(f"{key}.quick.{k}", "changes a key its set or grid does not give")
            if (CONF_DIR / "experiment" / f"{sweep['name']}.yaml").exists():  # its runs would join that file's sweeps
                raise self.error(f"{key}.name", f"{sweep['name']} is an experiment file's; name the grid otherwise")
            grid = Grid(
                self.name(f"{key}.name", sweep["name"]),
                None if sweep.get("experiment") is None else self.name(f"{key}.experiment", sweep["experiment"]),
                tuple((k, _value(v)) for k, v in overrides["set"].items()),
                tuple((k, _value(v)) for k, v in overrides["grid"].items()),
                tuple((k, _value(v)) for k, v in overrides["quick"].items()),
            )
            names.append(grid.name)
            grids.append(grid)
        if not names:
            raise self.error("sweeps", "must name at least one sweep")
        if len(set(names)) < len(names):
            raise self.error("sweeps", f"a sweep is named twice: {', '.join(names)}")
        return tuple(names), tuple(grids)

    def arms(self, value) -> tuple[Arm, ...]:
        self.mapping("arms", value, tuple(value) if isinstance(value, dict) else ())
        arms = []
        for i, (name, arm) in enumerate(value.items()):
            key = f"arms.{name}"
            self.name(key, name)
            self.mapping(key, arm, ARM_KEYS, ("where",))
            where = self.mapping(
                f"{key}.where", arm["where"], tuple(arm["where"]) if isinstance(arm["where"], dict) else ()
            )
            color = self.text(f"{key}.color", arm.get("color", plots.CYCLE[i % len(plots.CYCLE)]))
            arms.append(Arm(name, dict(where), self.text(f"{key}.label", arm.get("label", name)), color))
        if not arms:
            raise self.error("arms", "must name at least one arm")
        return tuple(arms)

    def claim(self, key: str, value, arms: dict[str, Arm]) -> claims_lib.Claim:
        self.mapping(key, value, CLAIM_KEYS, CLAIM_REQUIRED)
        sides = []
        for side in ("a", "b"):
            arm = value[side]
            if arm not in arms:
                raise self.error(f"{key}.{side}", f"{arm!r} is not an arm; the arms: {', '.join(arms)}")
            sides.append(claims_lib.Side(arms[arm].label, dict(arms[arm].where)))
        direction = self.text(f"{key}.direction", value["direction"])
        if direction not in claims_lib.DIRECTIONS:
            raise self.error(f"{key}.direction", f"{direction!r}; allowed: {', '.join(claims_lib.DIRECTIONS)}")
        margin = self.number(f"{key}.margin", value["margin"])
        seed_cap = self.number(f"{key}.seed_cap", value.get("seed_cap", sequential.DEFAULT_CAP), whole=True)
        return claims_lib.Claim(
            self.text(f"{key}.id", value["id"]),
            self.text(f"{key}.source", value["source"]),
            self.text(f"{key}.sentence", value["sentence"]),
            *sides,
            self.metric(f"{key}.metric", value["metric"]),
            direction,
            margin=margin,
            seed_cap=seed_cap,
            **{k: self.text(f"{key}.{k}", value[k]) for k in ("history", "handicap", "fair_twin") if k in value},
        )

    def metric(self, key: str, value) -> claims_lib.Metric:
        if not isinstance(value, dict) or "kind" not in value:
            raise self.error(key, f"must be a mapping with a kind, one of: {', '.join(METRICS)}")
        kind = value["kind"]
        if kind not in METRICS:
            raise self.error(f"{key}.kind", f"{kind!r} is not a metric; allowed: {', '.join(METRICS)}")
        cls = METRICS[kind]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        params = {}
        hints = typing.get_type_hints(cls)
        for name, given in value.items():
            if name == "kind":
                continue
            if name not in fields:
                raise self.error(f"{key}.{name}", f"not a parameter of {kind}; allowed: {', '.join(fields)}")
            params[name] = self.parameter(f"{key}.{name}", given, hints[name])
        return cls(**params)

    def parameter(self, key: str, value, hint):
        """A metric parameter as its field holds it: a mapping as (column, value) pairs, a number as given (64 stays 64,
        as a module would write it: the claim's hash reads it so), text otherwise; empty only where it may be."""
        if key.rsplit(".", 1)[-1] in PAIRS:
            pairs = self.mapping(key, value, tuple(value) if isinstance(value, dict) else ())
            return tuple((k, _value(v)) for k, v in pairs.items())
        kinds = typing.get_args(hint) or (hint,)
        if value is None:
            if type(None) in kinds:
                return None
            raise self.error(key, "must not be empty")
        if float in kinds or int in kinds:
            return self.number(key, value, whole=float not in kinds)
        return self.text(key, value)


def check_arms(declared: Declared, planned) -> None:
    """Refuse an arm that names a column the planned runs lack or that matches none of them (StudyFileError)."""
    for arm in declared.arms:
        key = f"{declared.path}: arms.{arm.name}.where"
        for column, value in arm.where.items():
            if column not in planned.columns:
                raise StudyFileError(f"{key}: no column {column}; the runs have {', '.join(_config_columns(planned))}")
        if claims_lib.select(planned, arm.where).empty:
            varied = {c: sorted({str(v) for v in planned[c]}) for c in arm.where}
            runs = "; ".join(f"{c} in {{{', '.join(v)}}}" for c, v in varied.items())
            raise StudyFileError(f"{key}: {where_text(arm.where)} matches none of the planned runs ({runs})")


def _config_columns(planned) -> list[str]:
    return [c for c in planned.columns if c not in claims_lib.LOGGED]


def _value(value):
    """A value as a config holds it: YAML's lists and scalars as they are."""
    return tuple(value) if isinstance(value, list) else value


def is_file(name: str) -> bool:
    """Whether a study is named by its file (a path ending in .yaml or .yml) rather than by its name."""
    return name.endswith((".yaml", ".yml"))
