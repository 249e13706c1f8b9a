"""Recipes and ``kk run``: a competition's whole pipeline, baseline -> models small to large ->
ensemble, from a recipe in ``pipelines/<name>.toml``.

A recipe is data: an ordered list of stages, each naming a registered pipeline (``baseline``,
``train``, ``ensemble``) and its parameters. A competition's spec names its default recipe and may
override a stage's parameters in its ``[stages.<name>]`` table. A stage whose identical run (same
parameters, same data, same feature code) already exists is skipped and its run reused.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError, did_you_mean, one_of
from .runs import Run, RunStore, data_fingerprint, fingerprint
from .spec import Competition, validate_name
from .toml_table import TomlTable
from .trainconfig import SPEC_KEYS, check_table
from .workspace import Workspace, resolve, shipped

STAGE_KEYS = {
    "baseline": {"models", "params", "seed", "k", "time_budget", "bags", "repeats"},
    "train": set(SPEC_KEYS),
    "ensemble": {"method"},
}
# rough training speed on a 2-core CPU at 64 px, batch 32 (images/s), for --dry-run estimates
_SPEED_64PX = {"convnext_atto": 275, "resnet18": 150, "resnet10t": 220, "resnet34": 80, "convnext_small": 9,
               "convnext_tiny": 20, "efficientnet_b0": 90, "test_efficientnet": 2000,
               # measured at 224-260 px on flowers-small (18 img/s for lite0 at 224), scaled to 64 px
               "tf_efficientnet_lite0": 220, "tf_efficientnet_lite1": 160, "tf_efficientnet_lite2": 120}


@dataclass(frozen=True)
class Stage:
    name: str
    pipeline: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    stages: tuple[Stage, ...]
    path: Path


@dataclass
class StageOutcome:
    stage: Stage
    # "ran" | "skipped" (its stage ran before) | "reused" (identical runs existed) | "planned"
    # | "absent" (its model family is not installed: ``note`` says how to install it)
    status: str
    runs: list[Run] = field(default_factory=list)
    seconds: float = 0.0
    estimate_s: float | None = None
    key: str = ""
    note: str = ""


@dataclass
class PipelineResult:
    competition: str
    recipe: str
    outcomes: list[StageOutcome]
    submission: Path | None = None
    cv: float | None = None
    holdout: float | None = None
    seconds: float = 0.0


# the default recipes: the repository's pipelines/, shipped in the wheel as kagglekit/recipes
PACKAGED_RECIPES = shipped("recipes", "pipelines", "*.toml")


def list_recipes(ws: Workspace) -> list[str]:
    """The workspace's recipes (``pipelines/``) and kagglekit's own."""
    return sorted({p.stem for folder in (ws.pipelines_dir, PACKAGED_RECIPES) if folder.is_dir()
                   for p in folder.glob("*.toml")})


def load_recipe(ws: Workspace, name: str, comp: Competition | None = None) -> Recipe:
    """Read ``pipelines/<name>.toml`` of the workspace, else kagglekit's recipe of that name; apply
    the competition's ``[stages.<name>]`` overrides."""
    validate_name(name, "pipeline name")
    path = ws.pipelines_dir / f"{name}.toml"
    if not path.is_file():
        path = PACKAGED_RECIPES / f"{name}.toml"
    if not path.is_file():
        names = list_recipes(ws)
        raise SpecError(f"no pipeline recipe {name!r} in {ws.pipelines_dir}: known are {one_of(names) or 'none'}"
                        f"{did_you_mean(name, names)}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: malformed TOML: {e}") from None
    top = TomlTable(raw, "", path)
    description = top.get("description", str, "")
    top.seen.add("stages")
    items = raw.get("stages")
    if not isinstance(items, list) or not items:
        raise top.error("stages", "expected one or more [[stages]] tables")
    stages = []
    for i, item in enumerate(items):
        t = TomlTable(item, f"stages[{i}]", path)
        stage_name = t.get("name", str, required=True)
        pipeline = t.get("pipeline", str, required=True, choices=tuple(STAGE_KEYS))
        params = {k: v for k, v in t.data.items() if k not in ("name", "pipeline")}
        if pipeline == "train":
            check_table(params, path, f"stages[{i}]")
        if comp is not None and stage_name in comp.stages:
            if pipeline == "train":
                check_table(comp.stages[stage_name], comp.spec_file, f"stages.{stage_name}")
            params.update(comp.stages[stage_name])
        allowed = STAGE_KEYS[pipeline]
        for k in params:
            if k not in allowed:
                raise SpecError(f"{path}: key 'stages[{i}].{k}' (stage {stage_name!r}): unknown for pipeline "
                                f"'{pipeline}'; allowed: {one_of(sorted(allowed))}{did_you_mean(k, allowed)}")
        stages.append(Stage(stage_name, pipeline, params))
    top.finish()
    if comp is not None:
        unknown = set(comp.stages) - {s.name for s in stages}
        if unknown:
            u = sorted(unknown)[0]
            raise SpecError(f"{comp.spec_file}: [stages.{u}] overrides a stage that recipe {name!r} does not have; "
                            f"its stages are {one_of(s.name for s in stages)}"
                            f"{did_you_mean(u, [s.name for s in stages])}")
    return Recipe(name, description, tuple(stages), path)


def stage_key(stage: Stage, data_key: str, members: list[str]) -> str:
    """A stage's identity: the run store's fingerprint of its pipeline, parameters and (for an
    ensemble) member runs, on the data's fingerprint."""
    return fingerprint({"pipeline": stage.pipeline, "params": stage.params,
                        "members": sorted(members) if stage.pipeline == "ensemble" else []}, data_key)


def _existing(store: RunStore, key: str) -> list[Run]:
    return [r for r in store.runs() if r.config.get("stage_key") == key]


def missing_data(comp: Competition, ws: Workspace) -> str | None:
    """Why ``comp``'s training data cannot be read yet (and what to do), or None when it can. Reads
    no data and generates none."""
    data_dir = ws.data_dir(comp)
    if comp.builtin and not data_dir.is_dir():
        return f"built-in data is generated into {data_dir} on the first run"
    if comp.kind == "tabular" and not (data_dir / comp.files.train).is_file():
        return f"{data_dir / comp.files.train} not found: kk download {comp.name} (or set KK_DATA_DIR)"
    if not data_dir.is_dir():
        return f"{data_dir} not found: kk download {comp.name} (or set KK_DATA_DIR)"
    return None


def _estimate(stage: Stage, comp: Competition, ws: Workspace) -> float | None:
    """Seconds, roughly: enough to tell minutes from hours. None when the data is not there yet."""
    if missing_data(comp, ws):
        return None
    try:
        from .data import load_data

        n = len(load_data(comp, ws).train)
    except Exception:
        return None
    k = stage.params.get("k", comp.cv.k)
    if stage.pipeline == "baseline":
        models = stage.params.get("models", ["rf", "lgbm"])
        k *= stage.params.get("bags", 1) * stage.params.get("repeats", comp.cv.repeats)  # fits per model
        return k * n * (0.0008 * ("rf" in models) + 0.0004 * ("lgbm" in models) + 0.001 * ("catboost" in models)) + 2
    if stage.pipeline == "train":
        sizes = stage.params.get("sizes", [128])
        epochs = stage.params.get("epochs", comp.train.get("epochs"))
        if epochs is None:  # kk train's rule by the training images of a fold
            from .vision.config import default_epochs

            epochs = default_epochs(round(n * (k - 1) / k))
        speed = _SPEED_64PX.get(stage.params.get("arch", "resnet18"), 60)
        per_epoch = sum((s / 64) ** 2 for s in sizes) / len(sizes) * n * (k - 1) / k / speed
        return k * (epochs + 1) * per_epoch * 1.3 + 5  # + validation, TTA, start-up
    return 5.0


def run_pipeline(competition: str | Competition, pipeline: str | None = None, *, workspace: Workspace | None = None,
                 dry_run: bool = False, progress: bool = False,
                 on_stage: Callable[[StageOutcome], None] | None = None) -> PipelineResult:
    """Run a recipe's stages in order, reusing identical finished stages, ending with the ensemble."""
    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    name = pipeline or comp.pipeline or ("vision" if comp.kind == "image" else "tabular")
    recipe = load_recipe(ws, name, comp)
    store = RunStore(ws, comp.name)
    dkey = data_fingerprint(comp, ws)
    outcomes: list[StageOutcome] = []
    produced: list[str] = []
    last_run: Run | None = None
    for stage in recipe.stages:
        absent = _absent_families(stage)
        if absent:  # an optional family (kagglekit[catboost]) not installed here: say so and go on
            outcomes.append(StageOutcome(stage, "absent", note=absent))
            if on_stage is not None:
                on_stage(outcomes[-1])
            continue
        key = stage_key(stage, dkey, produced)
        existing = _existing(store, key)
        out = StageOutcome(stage, "skipped" if existing else ("planned" if dry_run else "ran"), existing, key=key)
        if not existing and dry_run:
            out.estimate_s = _estimate(stage, comp, ws)
        elif not existing:
            t = time.perf_counter()
            out.runs, reused = _RUNNERS[stage.pipeline](comp, ws, stage, key, produced, progress)
            out.status = "reused" if reused else "ran"  # identical runs made outside kk run count too
            out.seconds = time.perf_counter() - t
        if stage.pipeline == "ensemble":
            last_run = out.runs[0] if out.runs else None
        else:
            produced += [r.id for r in out.runs] or ([f"<{stage.name}>"] if dry_run else [])
        outcomes.append(out)
        if on_stage is not None:
            on_stage(out)
    result = PipelineResult(comp.name, recipe.name, outcomes, seconds=time.perf_counter() - t0)
    if last_run is None and not dry_run and produced:  # no ensemble stage: the best run made here
        last_run = store.best(comp.metric, [store.get(r) for r in produced])
    if last_run is not None:
        submitted = last_run.scores.get("submission")
        if submitted is None:
            from .data import load_data
            from .submissions import submit_run

            submitted, _ = submit_run(load_data(comp, ws), ws, last_run)
        result.submission = Path(submitted) if submitted else None  # None: no test images
        result.cv, result.holdout = last_run.cv, last_run.scores.get("holdout")
    return result


def _absent_families(stage: Stage) -> str:
    """Why a baseline stage cannot run here: every model it names is an uninstalled optional family."""
    if stage.pipeline != "baseline":
        return ""
    from .tabular.models import missing_extra

    models = stage.params.get("models", ["rf", "lgbm"])
    hints = [missing_extra(m) for m in models]
    if not all(hints):
        return ""
    return f"{', '.join(models)} not installed: {'; '.join(dict.fromkeys(h for h in hints if h))}"


def _run_baseline(comp: Competition, ws: Workspace, stage: Stage, key: str, produced: list[str],
                  progress: bool) -> tuple[list[Run], bool]:
    from .tabular.baseline import baseline

    p = stage.params
    result = baseline(comp, models=tuple(p.get("models", ("rf", "lgbm"))), k=p.get("k"), seed=p.get("seed", 42),
                      params=p.get("params"), time_budget=p.get("time_budget"), workspace=ws, progress=progress,
                      bags=p.get("bags", 1), repeats=p.get("repeats"), submit=False,
                      record={"stage_key": key, "stage": stage.name})
    return [r.run for r in result.results], all(r.reused for r in result.results)


def _run_train(comp: Competition, ws: Workspace, stage: Stage, key: str, produced: list[str],
               progress: bool) -> tuple[list[Run], bool]:
    from .vision.launch import train

    # the stage's parameters over the competition's [train] defaults
    result = train(comp, workspace=ws, progress=progress, submit=False, record={"stage_key": key, "stage": stage.name},
                   **stage.params)
    return [result.run], result.reused


def _run_ensemble(comp: Competition, ws: Workspace, stage: Stage, key: str, produced: list[str],
                  progress: bool) -> tuple[list[Run], bool]:
    from .blend import ensemble

    result = ensemble(comp, produced, method=stage.params.get("method", "greedy"), workspace=ws,
                      record={"stage_key": key, "stage": stage.name})
    assert result.run is not None
    return [result.run], result.reused


_RUNNERS: dict[str, Callable[..., tuple[list[Run], bool]]] = {"baseline": _run_baseline, "train": _run_train,
                                                  "ensemble": _run_ensemble}


def baseline_from_recipe(ws: Workspace, name: str, comp: Competition) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The models and parameters of a recipe's baseline stages (``kk baseline --pipeline NAME``)."""
    recipe = load_recipe(ws, name, comp)
    models: list[str] = []
    params: dict[str, Any] = {}
    for s in recipe.stages:
        if s.pipeline == "baseline":
            for m in s.params.get("models", ["rf", "lgbm"]):
                if m not in models:
                    models.append(m)
            for m, p in (s.params.get("params") or {}).items():
                params.setdefault(m, {}).update(p)
    if not models:
        raise SpecError(f"{recipe.path}: recipe {name!r} has no baseline stage to run with kk baseline; use kk run")
    return tuple(models), params
