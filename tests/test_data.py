import os
import time

import pandas as pd
import pytest

from kagglekit.data import load_data, read_table
from kagglekit.errors import DataError

from .conftest import make_tabular


def test_load_synthetic(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    assert len(data.train) == 400 and len(data.test) == 100 and data.sample is not None
    assert data.solution is not None and "y" in data.solution


def test_missing_file_names_file_and_lists_folder(ws):
    make_tabular(ws.root)
    (ws.root / "data" / "synth" / "test.csv").unlink()
    with pytest.raises(DataError) as e:
        load_data(ws.competition("synth"), ws)
    assert "test.csv: file not found" in str(e.value) and "train.csv" in str(e.value)


def test_missing_data_folder_suggests_download(ws):
    make_tabular(ws.root)
    os.rename(ws.root / "data" / "synth", ws.root / "elsewhere")
    with pytest.raises(DataError, match="kk download synth"):
        load_data(ws.competition("synth"), ws)


def test_missing_column_lists_columns_found(ws):
    make_tabular(ws.root)
    p = ws.root / "data" / "synth" / "train.csv"
    pd.read_csv(p).rename(columns={"y": "target"}).to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        load_data(ws.competition("synth"), ws)
    msg = str(e.value)
    assert "no column 'y'" in msg and "columns found: row_id, x1, x2, cat, when, target" in msg


def test_duplicate_ids(ws):
    make_tabular(ws.root)
    p = ws.root / "data" / "synth" / "train.csv"
    df = pd.read_csv(p)
    df.loc[5, "row_id"] = df.loc[4, "row_id"]
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"repeated ids \(e.g. 4\)"):
        load_data(ws.competition("synth"), ws)


def test_nan_target(ws):
    make_tabular(ws.root)
    p = ws.root / "data" / "synth" / "train.csv"
    df = pd.read_csv(p)
    df.loc[[3, 8], "y"] = None
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match="target column 'y' has 2 missing values"):
        load_data(ws.competition("synth"), ws)


def test_unparseable_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b'a,b\n1,"unterminated\n')
    with pytest.raises(DataError, match="bad.csv: cannot parse as CSV"):
        read_table(p)


def test_parquet_cache_is_used_and_invalidated(tmp_path):
    p = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(p, index=False)
    cache = tmp_path / "cache"
    first = read_table(p, cache)
    files = list(cache.glob("t-*.parquet"))
    assert len(files) == 1
    # a cache hit reads the parquet: prove it by editing the parquet behind the CSV's back
    pd.DataFrame({"a": [9, 9], "b": ["c", "c"]}).to_parquet(files[0], index=False)
    assert read_table(p, cache)["a"].tolist() == [9, 9]
    # changing the CSV (size/mtime) invalidates the cache
    time.sleep(0.01)
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(p, index=False)
    assert read_table(p, cache)["a"].tolist() == [1, 2, 3]
    assert first["a"].tolist() == [1, 2]


def test_builtin_competitions_generate_deterministically(tmp_path):
    from kagglekit.builtin import generate

    a = generate("churn", tmp_path / "a")
    b = generate("churn", tmp_path / "b")
    ta, tb = pd.read_csv(a / "train.csv"), pd.read_csv(b / "train.csv")
    pd.testing.assert_frame_equal(ta, tb)
    assert ta["region"].isna().any() and ta["age"].isna().any() and ta["signup_date"].isna().any()
    assert set(pd.read_csv(a / "solution.csv").columns) == {"customer_id", "churned"}
    s = generate("shapes", tmp_path / "s")
    tr = pd.read_csv(s / "train.csv")
    assert set(tr.columns) == {"image_id", "shape", "colour"} and (s / "images" / tr.image_id[0]).is_file()


def test_a_binary_target_with_a_third_value_is_refused(ws_path, ws):
    from kagglekit.errors import DataError

    from .conftest import make_tabular

    make_tabular(ws_path, "synth")
    train = pd.read_csv(ws_path / "data" / "synth" / "train.csv")
    train.loc[5, "y"] = 2
    train.to_csv(ws_path / "data" / "synth" / "train.csv", index=False)
    with pytest.raises(DataError, match=r"train.csv: target 'y' is declared binary but has 3 values \(0, 1, 2\)"):
        load_data(ws.competition("synth"), ws)


def test_messages_for_files_that_are_not_what_they_seem(ws_path, ws):
    """#14.9: a semicolon-separated or latin-1 file, a header-only file, train.csv as a folder."""
    from .conftest import make_tabular

    make_tabular(ws_path, "synth")
    data = ws_path / "data" / "synth"
    train = pd.read_csv(data / "train.csv")
    comp = ws.competition("synth")

    train.to_csv(data / "train.csv", index=False, sep=";")
    with pytest.raises(DataError, match=r"train.csv: one column named .* looks ';'-separated"):
        load_data(comp, ws)
    train.assign(cat=train["cat"].fillna("café")).to_csv(data / "train.csv", index=False, encoding="latin-1")
    with pytest.raises(DataError, match="train.csv: not UTF-8 text .* iconv -f latin1"):
        load_data(comp, ws)
    train.iloc[:0].to_csv(data / "train.csv", index=False)
    with pytest.raises(DataError, match="train.csv: no rows, only a header"):
        load_data(comp, ws)
    train.to_csv(data / "train.csv", index=False)
    test = pd.read_csv(data / "test.csv")
    test.iloc[:0].to_csv(data / "test.csv", index=False)
    with pytest.raises(DataError, match="test.csv: no rows, only a header"):
        load_data(comp, ws)
    (data / "train.csv").unlink()
    (data / "train.csv").mkdir()
    with pytest.raises(DataError, match="train.csv: is a folder, expected a CSV file"):
        load_data(comp, ws)


def test_a_regression_target_with_text_is_one_line_naming_the_row(ws):
    from kagglekit.errors import DataError

    make_tabular(ws.root, task="regression")
    path = ws.root / "data" / "synth" / "train.csv"
    train = pd.read_csv(path)
    train["y"] = train["y"].astype(object)
    train.loc[5, "y"] = "n/a?"
    train.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"regression target 'y' has 1 values that are not numbers, e.g. 'n/a\?' "
                                        r"\(row 7 of the file\)"):
        load_data(ws.competition("synth"), ws)


def test_a_sample_class_never_seen_in_training_is_refused(ws):
    from kagglekit.errors import DataError

    make_tabular(ws.root, task="multiclass")
    path = ws.root / "data" / "synth" / "sample_submission.csv"
    pd.read_csv(path).assign(y="Unisex").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"sample_submission.csv: column 'y' holds 'Unisex', a class the training "
                                        r"rows never have"):
        load_data(ws.competition("synth"), ws)
