"""The real kaggle client against a fake Kaggle API server on 127.0.0.1 (no function mocks)."""

import json
import socket
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("kaggle")

from kagglekit.data import load_data  # noqa: E402
from kagglekit.errors import DataError, SubmissionError  # noqa: E402
from kagglekit.kaggle_client import KaggleError, download, fetch_submissions, safe_extract, submit  # noqa: E402
from kagglekit.runs import RunStore  # noqa: E402
from kagglekit.tabular.baseline import baseline  # noqa: E402

from .conftest import make_tabular  # noqa: E402
from .fake_kaggle import PORT, FakeKaggle, make_zip  # noqa: E402


def _port_free() -> bool:
    """The fake server needs 127.0.0.1:80 (root, or the port unprivileged) and a free port."""
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", PORT))
        return True
    except OSError:
        return False


@pytest.fixture
def kaggle_env(monkeypatch, tmp_path):
    if not _port_free():
        pytest.skip(f"cannot listen on 127.0.0.1:{PORT}, the kaggle client's --local endpoint")
    monkeypatch.setenv("KK_KAGGLE_ENV", "local")
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KK_KAGGLE_BACKOFF", "0.01")
    monkeypatch.setattr("kagglekit.kaggle_client.BACKOFF_S", 0.01)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)


@pytest.fixture
def synth_zip(ws):
    make_tabular(ws.root)
    folder = ws.root / "data" / "synth"
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "solution.csv"}
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return make_zip(files)


def test_download_extracts_into_the_data_folder(ws, kaggle_env, synth_zip):
    with FakeKaggle({"synth": synth_zip}) as fake:
        path = download(ws.competition("synth"), ws)
    assert path == ws.root / "data" / "synth"
    assert sorted(p.name for p in path.iterdir()) == ["sample_submission.csv", "test.csv", "train.csv"]
    assert "DownloadDataFiles" in fake.requests
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    load_data(ws.competition("synth"), ws)  # and the data loads
    with pytest.raises(KaggleError, match="--force"):
        download(ws.competition("synth"), ws)


def test_a_zip_with_traversal_is_refused_and_nothing_escapes(ws, kaggle_env, tmp_path):
    make_tabular(ws.root)
    import shutil

    shutil.rmtree(ws.root / "data" / "synth")
    evil = make_zip({"train.csv": b"a\n1\n", "../../escaped.txt": b"pwned"})
    with FakeKaggle({"synth": evil}), pytest.raises(DataError, match="outside"):
        download(ws.competition("synth"), ws)
    assert not list(ws.root.rglob("escaped.txt")) and not (tmp_path / "escaped.txt").exists()
    assert not (ws.root / "data" / "synth").exists()  # a failed download leaves nothing that looks complete
    for bad in (make_zip({"/abs.txt": b"x"}), make_zip({"ok.csv": b"x"}, symlink="link")):
        archive = tmp_path / "bad.zip"
        archive.write_bytes(bad)
        with pytest.raises(DataError, match="refusing"):
            safe_extract(archive, tmp_path / "out")


def test_submit_validates_first_then_records_and_fetches_scores(ws, kaggle_env):
    make_tabular(ws.root)
    result = baseline("synth", models=("lgbm",), workspace=ws)
    run = result.best.run
    bad = ws.root / "bad.csv"
    pd.read_csv(result.submission).iloc[:-1].to_csv(bad, index=False)
    with FakeKaggle({"synth": b""}) as fake:
        with pytest.raises(SubmissionError, match="rows, expected"):
            submit(ws.competition("synth"), ws, bad, "broken")
        assert fake.requests == []  # an invalid submission is never sent
        record = submit(ws.competition("synth"), ws, result.submission, "lgbm baseline")
        assert record["run"] == run.id and fake.submissions[0]["description"] == "lgbm baseline"
        assert fake.submissions[0]["content"] == result.submission.read_bytes()
        fake.scores[result.submission.name] = ("0.81234", "0.80000")
        fake.fail("ListSubmissions", 429, 429)  # rate-limited twice, then served
        rows = fetch_submissions(ws.competition("synth"), ws)
    assert rows[0]["public"] == pytest.approx(0.81234) and rows[0]["run"] == run.id
    assert RunStore(ws, "synth").get(run.id).lb["public"] == pytest.approx(0.81234)
    log = json.loads((run.path / "submissions.json").read_text())
    assert log[0]["message"] == "lgbm baseline"
    assert "secret" not in (run.path / "submissions.json").read_text()  # credentials never stored


@pytest.mark.parametrize("code, fragment", [(401, "HTTP 401"), (403, "/competitions/synth/rules"),
                                            (429, "rate-limiting")])
def test_http_errors_become_one_actionable_line(ws, kaggle_env, synth_zip, code, fragment):
    with FakeKaggle({"synth": synth_zip}) as fake:
        fake.fail("DownloadDataFiles", *([code] * 6))
        with pytest.raises(KaggleError) as e:
            download(ws.competition("synth"), ws)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_competition_is_404(ws, kaggle_env, synth_zip):
    with FakeKaggle({"other": synth_zip}), pytest.raises(KaggleError, match="HTTP 404"):
        download(ws.competition("synth"), ws)


def test_wrong_key_is_401(ws, kaggle_env, synth_zip, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    with FakeKaggle({"synth": synth_zip}), pytest.raises(KaggleError, match="rejected the credentials"):
        download(ws.competition("synth"), ws)


def test_network_failure_is_retried_then_reported(ws, kaggle_env, synth_zip):
    with pytest.raises(KaggleError, match="cannot reach Kaggle"):  # no server listening
        download(ws.competition("synth"), ws)


def test_no_credentials(ws, kaggle_env, monkeypatch, synth_zip):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(KaggleError, match="kaggle.json"):
        download(ws.competition("synth"), ws)


def test_kk_new_downloads_then_scaffolds_a_spec_baseline_accepts(ws, kaggle_env, synth_zip):
    from kagglekit.scaffold import new_competition

    with FakeKaggle({"synth": synth_zip}):
        path, guess = new_competition("synth", ws, name="fresh", download=True)
    assert (ws.root / "data" / "fresh" / "train.csv").is_file()
    assert guess.id_column == "row_id" and guess.targets == [("y", "binary")] and guess.date_columns == ["when"]
    r = baseline("fresh", models=("lgbm",), workspace=ws)
    assert r.best.cv > 0.7 and r.submission.is_file()


def test_a_damaged_download_never_replaces_the_data(ws, kaggle_env, synth_zip, tmp_path):
    """#14.7: a truncated zip was moved in as a success (old data renamed aside); a bad CRC was a
    traceback; a 306 KB zip expanded to 300 MB."""
    import zipfile

    with FakeKaggle({"synth": synth_zip}):
        path = download(ws.competition("synth"), ws)
    before = sorted(p.name for p in path.iterdir())
    truncated = synth_zip[: len(synth_zip) // 2]
    with FakeKaggle({"synth": truncated}), pytest.raises(DataError, match="not a readable zip archive"):
        download(ws.competition("synth"), ws, force=True)
    assert sorted(p.name for p in path.iterdir()) == before  # the old data is where it was
    assert not list(path.parent.glob("synth.old-*"))

    bad_crc = bytearray(make_zip({"train.csv": b"a,b\n" + b"1,2\n" * 5000}))
    start = bad_crc.index(b"train.csv") + len(b"train.csv") + 20  # inside the compressed data
    bad_crc[start] ^= 0xFF
    archive = tmp_path / "crc.zip"
    archive.write_bytes(bytes(bad_crc))
    with pytest.raises(DataError, match=r"member 'train.csv' is damaged .* try again"):
        safe_extract(archive, tmp_path / "out")

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train.csv", b"0" * 50_000_000)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DataError, match="zip bomb"):
        safe_extract(bomb, tmp_path / "out2")
    assert not (tmp_path / "out2" / "train.csv").exists()


def test_kk_submit_without_a_file_sends_the_best_runs_submission(ws, kaggle_env, monkeypatch, capsys):
    from kagglekit.cli import main

    make_tabular(ws.root)
    baseline("synth", models=("lgbm",), workspace=ws)
    best = RunStore(ws, "synth").get("best")
    monkeypatch.chdir(ws.root)
    with FakeKaggle({"synth": b""}) as fake:
        main(["submit", "synth", "-m", "first try"])
    assert fake.submissions[0]["content"] == Path(best.scores["submission"]).read_bytes()
    assert best.id in capsys.readouterr().out
