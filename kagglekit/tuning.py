"""``kk tune``: an Optuna study over a registered tabular model's search space, on the shared folds.

The objective is the competition's metric, cross-validated fold by fold on the shared folds; each
fold's running mean is reported so a median pruner stops poor trials after their first folds. The
study lives in an SQLite file beside the competition's runs (re-running continues it), or in any
Optuna RDB storage given by ``--storage`` (e.g. PostgreSQL), which lets several ``kk tune``
processes on several machines share one study. The best parameters become a recipe in
``pipelines/`` and a baseline run in the run store.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_data
from .errors import SpecError
from .folds import get_folds
from .metrics import get_metric
from .runs import write_json
from .spec import Competition, validate_name
from .workspace import Workspace, resolve


@dataclass(kw_only=True)
class TuneResult:
    study_name: str
    storage: str
    direction: str
    best_value: float
    best_params: dict[str, Any]
    n_trials: int  # trials in the study (all workers, all sessions)
    n_complete: int
    n_pruned: int
    recipe: Path | None = None
    run_id: str | None = None
    default_cv: float | None = None
    tuned_cv: float | None = None
    plots: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def default_storage(ws: Workspace, comp: str) -> str:
    folder = ws.runs_dir(comp) / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'studies.db'}"


def _storage(url: str, heartbeat: int | None = 60):
    """Optuna storage shared by workers: ``journal:<file>`` is Optuna's JournalStorage on a file (a
    shared folder, no database server); any other URL an RDB storage (SQLite, PostgreSQL, MySQL)
    with heartbeats: a worker killed mid-trial stops beating, so after ``2 x heartbeat`` seconds the
    next worker to start a trial marks it failed, and RetryFailedTrialCallback queues it again.
    Workers starting at the same instant on a new database race to create its schema; the losers
    retry once it exists (measured: an IntegrityError on SQLite, DuplicateTable on PostgreSQL)."""
    import optuna
    import sqlalchemy.exc

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    kwargs: dict[str, Any] = {"engine_kwargs": {"connect_args": {"timeout": 120}}} if url.startswith("sqlite") else {}
    if heartbeat:
        kwargs |= {"heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat, **_retry_callback()}
    for attempt in range(10):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as e:
            # PostgreSQL reports the lost race as DuplicateTable (a ProgrammingError); other
            # programming errors are not races and go to the user at once
            race = not isinstance(e, sqlalchemy.exc.ProgrammingError) or "already exists" in str(e)
            if attempt == 9 or not race:
                raise
            time.sleep(0.2 * (attempt + 1))


def _retry_callback() -> dict[str, Any]:
    """The storage argument that queues a dead worker's trial again: Optuna 4.9 renamed it."""
    import optuna

    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=2)}


def tune(competition: str | Competition, *, model: str = "lgbm", trials: int = 50, timeout: float | None = None,
         storage: str | None = None, study_name: str | None = None, threads: int = 1, seed: int | None = None,
         workspace: Workspace | None = None, progress: bool = False, finalize: bool = True,
         recipe_name: str | None = None, image: dict[str, Any] | None = None, heartbeat: int | None = 60) -> TuneResult:
    """Run ``trials`` trials (this worker's share) of the study; with ``finalize``, write the recipe,
    the plots and (tabular) a baseline run with the best parameters. For an image competition
    ``model`` is a timm architecture and ``image`` sets the fixed training settings: ``sizes``,
    ``batch_size``, ``pretrained``, ``weights``, ``folds`` (how many folds a trial trains, default 1)
    and ``max_epochs``."""
    import optuna

    t0 = time.perf_counter()
    ws, comp = resolve(competition, workspace)
    objective = _image_objective(comp, ws, model, image) if comp.kind == "image" else \
        _tabular_objective(comp, ws, model, threads)
    study_name = study_name or f"{comp.name}-{model}"
    storage_url = storage or default_storage(ws, comp.name)
    study = _open_study(comp, ws, study_name, storage_url, seed, heartbeat)
    bar, callbacks = _progress(progress, trials, model)
    study.optimize(_signed(objective), n_trials=trials, timeout=timeout, callbacks=callbacks, gc_after_trial=False)
    if bar is not None:
        bar.close()
    states = [t.state for t in study.get_trials(deepcopy=False)]
    result = TuneResult(study_name=study_name, storage=storage_url, direction=study.direction.name.lower(),
                        best_value=study.best_value, best_params=dict(study.best_params), n_trials=len(states),
                        n_complete=states.count(optuna.trial.TrialState.COMPLETE),
                        n_pruned=states.count(optuna.trial.TrialState.PRUNED))
    if finalize:
        _finalize(study, result, comp, ws, model, recipe_name, image)
    result.seconds = time.perf_counter() - t0
    return result


def _signed(objective: Any) -> Any:
    """The objective, with each trial marked by the worker that runs it (host:pid, for --status)."""
    import os
    import socket

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def run(trial: Any) -> float:
        trial.set_user_attr("worker", worker)
        return objective(trial)

    return run


def status(competition: str | Competition, *, model: str = "lgbm", storage: str | None = None,
           study_name: str | None = None, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """The study's trials: number, state, value, worker (host:pid), retried trial, seconds."""
    import optuna

    ws, comp = resolve(competition, workspace)
    study_name = study_name or f"{comp.name}-{model}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=_storage(storage or default_storage(ws, comp.name),
                                                                       heartbeat=None))
    return [{"number": t.number, "state": t.state.name, "value": t.value, "worker": t.user_attrs.get("worker"),
             "retry_of": t.system_attrs.get("failed_trial"), "params": t.params,
             "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
             if t.datetime_complete and t.datetime_start else None}
            for t in study.get_trials(deepcopy=False)]


def _open_study(comp: Competition, ws: Workspace, study_name: str, storage_url: str, seed: int | None,
                heartbeat: int | None = 60) -> Any:
    """The study (created, or continued), marked with its competition and fold assignment; a study
    of another competition under that name is refused."""
    import optuna

    folds = get_folds(load_data(comp, ws), ws)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=_storage(storage_url, heartbeat), study_name=study_name, direction=get_metric(comp.metric).direction,
        load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=1))
    if study.user_attrs.get("competition", comp.name) != comp.name:
        raise SpecError(f"study {study_name!r} in {storage_url} belongs to {study.user_attrs['competition']}")
    study.set_user_attr("competition", comp.name)
    study.set_user_attr("fold_id", folds.id)
    return study


def _tabular_objective(comp: Competition, ws: Workspace, model: str, threads: int) -> Any:
    """A trial: the model's search space sampled, cross-validated fold by fold; the running mean is
    reported after each fold so the median pruner can stop a poor trial early."""
    import optuna

    from .tabular.crossval import fit_predict_cv
    from .tabular.features import build_features
    from .tabular.models import MODELS, create_model

    create_model(model, task="regression")  # validates the name with a did-you-mean
    space = MODELS[model].search_space
    data = load_data(comp, ws)
    folds = get_folds(data, ws)
    feats = build_features(data)

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        scores = []
        for f in range(folds.k):
            cv = fit_predict_cv(feats, data, folds, model, params=params, n_jobs=threads, only_folds=[f],
                                predict_test=False)
            scores.append(cv.fold_scores[0])
            trial.report(float(np.mean(scores)), step=f)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


def _progress(progress: bool, trials: int, model: str) -> tuple[Any, list[Any]]:
    if not progress:
        return None, []
    from tqdm.auto import tqdm

    bar = tqdm(total=trials, desc=f"tune {model}", unit="trial", disable=None)

    def update(study: Any, trial: Any) -> None:
        bar.update(1)
        try:
            bar.set_postfix(best=f"{study.best_value:.5f}")
        except ValueError:
            pass

    return bar, [update]


def _finalize(study: Any, result: TuneResult, comp: Competition, ws: Workspace, model: str,
              recipe_name: str | None, image: dict[str, Any] | None) -> None:
    """The study's plots, its recipe, and (tabular) the tuned and default baselines' runs."""
    from .tabular.baseline import baseline

    out = ws.runs_dir(comp.name) / "tune"
    out.mkdir(parents=True, exist_ok=True)
    result.plots = _plots(study, out / result.study_name)
    name = recipe_name or f"{comp.name}-{model}-tuned"
    if comp.kind == "image":
        result.recipe = write_image_recipe(ws, name, comp, model, result, image)
        return
    best = baseline(comp, models=(model,), params={model: result.best_params}, workspace=ws, submit=True,
                    record={"tuned_by": result.study_name})
    default = baseline(comp, models=(model,), workspace=ws, submit=False)
    result.run_id, result.tuned_cv, result.default_cv = best.results[0].run.id, best.best.cv, default.best.cv
    result.recipe = write_recipe(ws, name, comp, model, result)
    write_json(out / f"{result.study_name}.json", {
        "study": result.study_name, "storage": result.storage, "best_value": result.best_value,
        "best_params": result.best_params, "trials": result.n_trials, "run": result.run_id,
        "tuned_cv": result.tuned_cv, "default_cv": result.default_cv, "recipe": str(result.recipe)})


def write_recipe(ws: Workspace, name: str, comp: Competition, model: str, result: TuneResult) -> Path:
    """``pipelines/<name>.toml``: the tuned model as a baseline stage, then an ensemble stage."""
    validate_name(name, "recipe name")
    ws.pipelines_dir.mkdir(parents=True, exist_ok=True)
    path = ws.pipelines_dir / f"{name}.toml"
    params = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(result.best_params.items()) if v is not None)
    text = (f"# Written by `kk tune {comp.name} --model {model}`: study {result.study_name!r}, {result.n_trials} "
            f"trials, best CV {result.best_value:.5f} ({comp.metric}).\n"
            f'description = "{model} with tuned parameters for {comp.name}, then an ensemble."\n\n'
            f'[[stages]]\nname = "{model}-tuned"\npipeline = "baseline"\nmodels = ["{model}"]\n'
            f"params = {{ {model} = {{ {params} }} }}\n\n"
            f'[[stages]]\nname = "ensemble"\npipeline = "ensemble"\nmethod = "greedy"\n')
    from .files import atomic_write_bytes

    atomic_write_bytes(path, text.encode())
    return path


def _plots(study: Any, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt  # optuna draws with pyplot; each figure is closed once saved
    import optuna.visualization.matplotlib as ovm
    from matplotlib.figure import Figure

    out = []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
        for name, fn in (("history", ovm.plot_optimization_history), ("importances", ovm.plot_param_importances)):
            try:
                ax = fn(study)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. too few complete trials for importances
            fig = ax.figure if hasattr(ax, "figure") else plt.gcf()
            fig = fig.figure if not isinstance(fig, Figure) else fig  # a SubFigure's parent figure
            fig.set_size_inches(7, 4.5)
            fig.tight_layout()
            path = stem.with_name(f"{stem.name}-{name}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
    return out


def _image_objective(comp: Competition, ws: Workspace, arch: str, image: dict[str, Any] | None):
    """Trials train ``arch`` on the first ``folds`` folds; their runs go to a folder of their own
    (``runs/<name>/tune/image-trials``), never mixed with the competition's runs."""
    import optuna

    from .vision.config import search_space
    from .vision.launch import train

    opts = dict(image or {})
    n_folds = int(opts.pop("folds", 1))
    max_epochs = int(opts.pop("max_epochs", 6))
    base = {k: (tuple(v) if isinstance(v, list) else v) for k, v in opts.items()}
    trial_ws = Workspace(root=ws.root, out=ws.runs_dir(comp.name) / "tune" / "image-trials")

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, max_epochs)
        scores = []
        for f in range(min(n_folds, comp.cv.k)):
            r = train(comp, workspace=trial_ws, submit=False, **{**base, **params, "arch": arch, "folds": (f,)})
            scores.append(r.cv)
            trial.report(float(np.mean(scores)), step=f)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


def write_image_recipe(ws: Workspace, name: str, comp: Competition, arch: str, result: TuneResult,
                       image: dict[str, Any] | None) -> Path:
    """``pipelines/<name>.toml``: one train stage with the best settings, then an ensemble stage."""
    validate_name(name, "recipe name")
    fixed = {k: v for k, v in (image or {}).items() if k not in ("folds", "max_epochs")}
    params = {**fixed, **result.best_params}
    body = "\n".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in sorted(params.items())
                     if v is not None)
    text = (f"# Written by `kk tune {comp.name} --model {arch}`: study {result.study_name!r}, {result.n_trials} "
            f"trials, best CV {result.best_value:.5f} ({comp.metric}) on a subset of folds.\n"
            f'description = "{arch} with tuned learning rate, epochs and augmentation, then an ensemble."\n\n'
            f'[[stages]]\nname = "{arch}-tuned"\npipeline = "train"\narch = "{arch}"\n{body}\n\n'
            f'[[stages]]\nname = "ensemble"\npipeline = "ensemble"\nmethod = "greedy"\n')
    from .files import atomic_write_bytes

    ws.pipelines_dir.mkdir(parents=True, exist_ok=True)
    path = ws.pipelines_dir / f"{name}.toml"
    atomic_write_bytes(path, text.encode())
    return path
