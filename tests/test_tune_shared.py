"""kk tune across machines: a study on a real PostgreSQL server (started by the test) or on a
journal file, shared by worker processes; heartbeats that retry the trial of a worker killed
mid-trial; kk tune --status by worker."""

import os
import signal
import subprocess
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")

from .conftest import REPO, make_tabular  # noqa: E402

TUNE = [sys.executable, "-m", "kagglekit", "tune", "synth", "--threads", "1"]


def _env(ws) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "KK_HOME": str(ws.root)}


def _workers(ws, n: int, *args: str) -> list[str]:
    procs = [subprocess.Popen([*TUNE, *args], env=_env(ws), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(n)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    return outputs


def _shared_study(ws, storage: str, storage_obj) -> None:  # storage_obj: a URL, or a callable making the storage
    """Two workers of 4 trials each on one study, then one finalising worker: every trial counted
    once, each worker's trials marked with it, the best retrained on the shared folds once."""
    from kagglekit.runs import RunStore

    _workers(ws, 2, "--trials", "4", "--storage", storage, "--study", "shared", "--no-finalize")
    trials = optuna.load_study(study_name="shared", storage=storage_obj() if callable(storage_obj) else storage_obj
                               ).get_trials()
    assert sorted(t.number for t in trials) == list(range(8))
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 8  # none evaluated twice
    (last,) = _workers(ws, 1, "--trials", "0", "--storage", storage, "--study", "shared")
    assert "retrained on the shared folds" in last
    tuned = [r for r in RunStore(ws, "synth").runs() if r.config.get("tuned_by") == "shared"]
    assert len(tuned) == 1
    status = subprocess.run([*TUNE, "--status", "--storage", storage, "--study", "shared"], env=_env(ws),
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert sum(line.endswith(": 4 complete") or " pruned" in line for line in status.stdout.splitlines()) >= 2


def test_a_journal_file_shares_one_study_without_a_database(ws):
    from optuna.storages.journal import JournalFileBackend

    make_tabular(ws.root, n=300)
    path = ws.root / "shared" / "study.log"
    _shared_study(ws, f"journal:{path}", lambda: optuna.storages.JournalStorage(JournalFileBackend(str(path))))


def test_workers_share_one_study_on_a_real_postgresql_server(ws, tmp_path):
    pgserver = pytest.importorskip("pgserver", reason="pgserver (a PostgreSQL server from PyPI) is in the dev extra")
    pytest.importorskip("psycopg")
    make_tabular(ws.root, n=300)
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    try:
        url = server.get_uri()
        assert url.startswith("postgresql")
        _shared_study(ws, url, url)
    finally:
        server.cleanup()


def test_the_trial_of_a_killed_worker_is_failed_and_retried_by_another(ws):
    """Worker A is SIGKILLed mid-trial: its heartbeat stops; worker B, started after the grace
    period, marks that trial failed and runs it again (RetryFailedTrialCallback)."""
    make_tabular(ws.root, n=3000)
    url = f"sqlite:///{ws.root / 'study.db'}"
    args = ["--storage", url, "--study", "killed", "--no-finalize", "--heartbeat", "1"]
    a = subprocess.Popen([*TUNE, "--trials", "50", *args], env=_env(ws), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    running = None
    deadline = time.time() + 300
    while running is None and time.time() < deadline and a.poll() is None:
        time.sleep(0.05)
        try:
            trials = optuna.load_study(study_name="killed", storage=url).get_trials(deepcopy=False)
        except KeyError:  # the study does not exist yet
            continue
        running = next((t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.number > 0), None)
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert running is not None, "worker A never ran a second trial"
    time.sleep(2.5)  # past the grace period (2 heartbeats)
    _workers(ws, 1, "--trials", "2", *args)
    trials = {t.number: t for t in optuna.load_study(study_name="killed", storage=url).get_trials()}
    killed = trials[running.number]
    assert killed.state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state != optuna.trial.TrialState.FAIL
    # the retry keeps every parameter the killed trial had drawn (a kill between two draws leaves
    # the rest to the retry's sampler)
    assert killed.params.items() <= retries[0].params.items()
    assert retries[0].user_attrs["worker"] != killed.user_attrs.get("worker")
