"""Loading a competition's tables: train, test and sample submission.

CSV files are parsed once and cached as parquet, keyed by the source file's path, size and mtime,
so a changed file is re-read and an unchanged one loads in milliseconds. Every declared column is
checked here, with errors that list the columns found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError, did_you_mean, missing_both_ways
from .files import atomic_write_parquet
from .spec import Competition
from .workspace import Workspace


@dataclass
class CompetitionData:
    """A competition's validated tables. For image competitions ``train`` and ``test`` hold one
    row per image with a ``path`` column (absolute file path)."""

    comp: Competition
    dir: Path
    train: pd.DataFrame
    test: pd.DataFrame
    sample: pd.DataFrame | None
    solution: pd.DataFrame | None = None

    @property
    def has_test(self) -> bool:
        """False for a labelled image set without test images: cross-validation only, no submission."""
        return len(self.test) > 0


def read_table(path: Path, cache_dir: Path | None = None) -> pd.DataFrame:
    """Read a CSV (or parquet) file, through a parquet cache when ``cache_dir`` is given."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a CSV file; name the file inside it under [files]")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    cached = None
    if cache_dir is not None:
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        cached = cache_dir / f"{path.stem}-{key}.parquet"
        if cached.is_file():
            try:
                return pd.read_parquet(cached)
            except Exception:  # a damaged cache is rebuilt, never trusted
                cached.unlink(missing_ok=True)
    try:
        df = pd.read_csv(path, low_memory=False)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({str(e).splitlines()[0][:80]}); if it is latin-1, re-save it as "
                        f"UTF-8: iconv -f latin1 -t utf-8 {path.name} > utf8.csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot parse as CSV: {str(e).splitlines()[0]}") from None
    if df.shape[1] == 1 and any(sep in str(df.columns[0]) for sep in (";", "\t", "|")):
        sep = next(x for x in (";", "\t", "|") if x in str(df.columns[0]))
        raise DataError(f"{path}: one column named {str(df.columns[0])[:60]!r}: the file looks {sep!r}-separated; "
                        "kagglekit reads comma-separated CSV, so re-save it with commas "
                        f"(pandas: pd.read_csv(path, sep={sep!r}).to_csv(path, index=False))")
    if cached is not None:
        try:
            atomic_write_parquet(df, cached)
        except (OSError, ValueError, TypeError):  # caching is an optimisation, never a failure
            pass
    return df


def require_columns(df: pd.DataFrame, columns: list[str] | tuple[str, ...], file: Path | str,
                    why: str) -> None:
    """Raise a DataError naming the file, the missing column, its purpose and the columns found."""
    for col in columns:
        if col not in df.columns:
            found = ", ".join(map(str, df.columns[:30])) + (" ..." if len(df.columns) > 30 else "")
            raise DataError(f"{file}: no column {col!r} ({why}){did_you_mean(col, map(str, df.columns))}; "
                            f"columns found: {found}")


def check_unique_ids(df: pd.DataFrame, id_column: str, file: Path | str) -> None:
    dup = df[id_column].duplicated(keep=False)
    if dup.any():
        examples = ", ".join(map(str, df.loc[dup, id_column].drop_duplicates().head(3)))
        raise DataError(f"{file}: id column {id_column!r} has {int(dup.sum())} rows with repeated ids "
                        f"(e.g. {examples}); ids must be unique")


def check_same_ids(test_ids: pd.Series, test_file: Path, sample_ids: pd.Series, sample_file: Path) -> None:
    """The test rows and the sample submission must list the same ids (compared as text), so a
    mismatch (``892`` vs ``892.0``, ``P892``) is found before any training, not after it."""
    a, b = set(test_ids.astype(str)), set(sample_ids.astype(str))
    if a == b:
        return
    raise DataError(f"{sample_file}: the sample submission's ids do not match the test rows: "
                    f"{missing_both_ways(a, f'ids of {test_file.name}', b, f'ids of {sample_file.name}')}. "
                    "A submission needs one prediction per sample id: check the id column and the files in [files]")


def load_data(comp: Competition, ws: Workspace) -> CompetitionData:
    """Load and check ``comp``'s tables, generating a built-in competition's data on first use."""
    data_dir = ws.data_dir(comp)
    if comp.builtin and not (data_dir / comp.files.train).exists():
        from .builtin import generate

        generate(comp.builtin, data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{comp.name}: data folder {data_dir} not found; run 'kk download {comp.name}', or set "
                        f"KK_DATA_DIR to a folder holding {comp.name}/")
    cache = ws.cache_dir / comp.name
    train, test, sample, cv_only = _read_tables(comp, data_dir, cache)
    tf = data_dir / comp.files.train
    test_file = data_dir / (comp.files.test or comp.files.sample_submission or "test")
    _check_rows_and_ids(comp, train, test, sample, (tf, test_file, data_dir / (comp.files.sample_submission or "")),
                        cv_only)
    _check_targets(comp, train, tf)
    _check_sample_classes(comp, train, sample, data_dir / (comp.files.sample_submission or ""))
    train, test = split_columns(comp, train, tf), split_columns(comp, test, test_file, required=False)
    _check_declared_columns(comp, train, test, tf)
    if comp.kind == "image" and comp.image is not None and comp.image.layout == "csv":
        from ._image_tables import csv_paths

        assert comp.image.train_path is not None  # the spec requires it for the csv layout
        train = train.assign(path=csv_paths(train, comp.image.train_path, data_dir, tf))
        if comp.image.test_path:
            test = test.assign(path=csv_paths(test, comp.image.test_path, data_dir, test_file))
    solution = None
    if comp.files.solution and (data_dir / comp.files.solution).is_file():
        solution = read_table(data_dir / comp.files.solution, cache)
    return CompetitionData(comp=comp, dir=data_dir, train=train, test=test, sample=sample, solution=solution)


def _read_tables(comp: Competition, data_dir: Path, cache: Path,
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, bool]:
    """(train, test, sample submission or None, cv_only): the declared files, or the tables of an
    image folder layout. ``cv_only``: labelled photos without a test set (CV and OOF, no submission)."""
    sample = None
    sample_file = data_dir / comp.files.sample_submission if comp.files.sample_submission else None
    if sample_file is not None:
        sample = read_table(_file(data_dir, sample_file.name, comp), cache)
        require_columns(sample, [comp.id_column], sample_file, f"the id column declared in {comp.spec_file}")
    folder_layout = comp.kind == "image" and comp.image is not None and comp.image.layout in ("folder", "filename")
    if folder_layout:
        from ._image_tables import folder_tables

        train, test = folder_tables(comp, data_dir, sample, sample_file)
    else:
        train = read_table(_file(data_dir, comp.files.train, comp), cache)
        test = read_table(_file(data_dir, comp.files.test, comp), cache) if comp.files.test else None
    cv_only = test is None and sample is None and folder_layout
    if cv_only:
        test = pd.DataFrame({comp.id_column: pd.Series(dtype=object), "path": pd.Series(dtype=object)})
    if test is None:
        if sample is None:
            raise DataError(f"{comp.spec_file}: no test file and no sample submission declared under [files]; "
                            "declare test = '<file>' or sample_submission = '<file>'")
        test = sample[[comp.id_column]].copy() if comp.id_column in sample.columns else sample.copy()
    return train, test, sample, cv_only


def _check_rows_and_ids(comp: Competition, train: pd.DataFrame, test: pd.DataFrame, sample: pd.DataFrame | None,
                        files: tuple[Path, Path, Path], cv_only: bool) -> None:
    """Rows in every table, the id column in each, unique ids, and the sample's ids the test's."""
    tf, test_file, sample_file = files
    for frame, file in ((train, tf), *(() if cv_only else ((test, test_file),))):
        if len(frame) == 0:
            raise DataError(f"{file}: no rows, only a header; the file is incomplete (download it again: kk download "
                            f"{comp.name} --force)")
    require_columns(train, [comp.id_column], tf, f"the id column declared as id in {comp.spec_file}")
    require_columns(train, [t.name for t in comp.targets], tf, f"a target declared in {comp.spec_file}")
    require_columns(test, [comp.id_column], test_file, f"the id column declared in {comp.spec_file}")
    check_unique_ids(train, comp.id_column, tf)
    check_unique_ids(test, comp.id_column, test_file)
    if sample is not None:
        check_same_ids(test[comp.id_column], test_file, sample[comp.id_column], sample_file)


def _check_targets(comp: Competition, train: pd.DataFrame, tf: Path) -> None:
    """No missing submitted targets (an auxiliary one's missing labels are left out of its loss and
    score), numbers in a regression target, and a binary target with two values."""
    for t in comp.targets:
        if t.task == "regression" and not pd.api.types.is_numeric_dtype(train[t.name]):
            values = pd.to_numeric(train[t.name], errors="coerce")
            bad = train[t.name][values.isna() & train[t.name].notna()]
            if len(bad):
                raise DataError(f"{tf}: regression target {t.name!r} has {len(bad)} values that are not numbers, "
                                f"e.g. {bad.iloc[0]!r} (row {bad.index[0] + 2} of the file); fix them, or declare "
                                f"the target's task as a class task in {comp.spec_file}")
        n_nan = int(train[t.name].isna().sum())
        if n_nan and t.submit:
            raise DataError(f"{tf}: target column {t.name!r} has {n_nan} missing values (NaN); drop or fill "
                            "those rows before training")
        if n_nan == len(train):  # an auxiliary target's missing labels are left out of its loss: some must remain
            raise DataError(f"{tf}: auxiliary target {t.name!r} has no labels (all {n_nan} values missing); "
                            f"remove it from {comp.spec_file}")
        if t.task == "binary":
            values = train[t.name].unique()
            if len(values) > 2:
                shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in sorted(values, key=str)[:5])
                raise DataError(f"{tf}: target {t.name!r} is declared binary but has {len(values)} values ({shown}"
                                f"{', ...' if len(values) > 5 else ''}); fix the stray rows, or declare "
                                f"task = \"multiclass\" in {comp.spec_file}")


def _check_sample_classes(comp: Competition, train: pd.DataFrame, sample: pd.DataFrame | None, sf: Path) -> None:
    """A class target's values in the sample submission are classes the training rows have (a sample
    holding 'Unisex', or 1 where training says 'yes', means a model could never submit it), unless
    the spec declares the classes."""
    if sample is None:
        return
    for t in comp.submitted_targets:
        if not t.is_classification or t.classes is not None or t.name not in sample.columns:
            continue
        seen = set(train[t.name].astype(str))
        if pd.api.types.is_float_dtype(sample[t.name]) and not pd.api.types.is_float_dtype(train[t.name]):
            continue  # probabilities, not labels
        unseen = sorted(set(sample[t.name].dropna().astype(str)) - seen)
        if unseen:
            raise DataError(f"{sf}: column {t.name!r} holds {unseen[0]!r}, a class the training rows never have "
                            f"({len(seen)} classes there, e.g. {sorted(seen)[0]!r}); check that the sample and "
                            f"the train file code the target alike, or declare every class in {comp.spec_file} "
                            f"([[targets]] classes = [...])")


def split_columns(comp: Competition, df: pd.DataFrame, file: Path, *, required: bool = True) -> pd.DataFrame:
    """``[tabular] split``: each compound column's parts as new columns ``<col>_1``, ``<col>_2``, ...
    ("B/0/P" -> "B", 0, "P"); a part whose every value is a number becomes numeric. Missing values
    stay missing in every part. The original column is kept (the column plan leaves it out)."""
    out = {}
    for col, sep in comp.tabular.split:
        if col not in df.columns:
            if required:
                require_columns(df, [col], file, f"listed in [tabular] split of {comp.spec_file}")
            continue  # a column only train has: the column plan leaves it out
        parts = df[col].astype("string").str.split(sep, expand=True, regex=False)
        for i in parts.columns:
            name = f"{col}_{i + 1}"
            if name in df.columns:
                raise DataError(f"{file}: [tabular] split of {col!r} would make column {name!r}, which the file "
                                f"already has; rename that column or leave {col!r} out of split in {comp.spec_file}")
            part = parts[i].astype(object).where(parts[i].notna(), None)
            numeric = pd.to_numeric(part, errors="coerce")
            out[name] = numeric if numeric.notna().sum() == part.notna().sum() else part
    return df.assign(**out) if out else df


def split_parts(columns: Any, col: str) -> list[str]:
    """The parts ``split_columns`` made of ``col`` among ``columns``: ``<col>_1``, ``<col>_2``, ..."""
    return [c for c in columns if c.startswith(f"{col}_") and c[len(col) + 1:].isdigit()]


def _check_declared_columns(comp: Competition, train: pd.DataFrame, test: pd.DataFrame, tf: Path) -> None:
    """The columns the spec names: date columns, the CV's group/time column, and [tabular] drop."""
    for col in comp.tabular.date_columns:
        require_columns(train, [col], tf, f"listed in [tabular] date_columns of {comp.spec_file}")
    for cv_col in (comp.cv.group, comp.cv.time):
        if cv_col:
            require_columns(train, [cv_col], tf, f"the CV group/time column in [cv] of {comp.spec_file}")
    from .tabular.dates import date_part_names

    parts = {n for c in comp.tabular.date_columns for n in date_part_names(c, time=comp.tabular.date_time)}
    for col in comp.tabular.drop:  # a file's column, or a part add_datepart makes (kk check's advice)
        if col not in train.columns and col not in test.columns and col not in parts:
            require_columns(train, [col], tf, f"listed in [tabular] drop of {comp.spec_file} (a column of the "
                            "files, or a date part such as " + (sorted(parts)[0] if parts else "saleDay") + ")")


def _file(data_dir: Path, name: str, comp: Competition) -> Path:
    path = data_dir / name
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a CSV file (declared under [files] in {comp.spec_file}); "
                        "name the file inside it")
    if not path.is_file():
        present = sorted(p.name for p in data_dir.iterdir())[:20] if data_dir.is_dir() else []
        raise DataError(f"{path}: file not found (declared under [files] in {comp.spec_file}); files in "
                        f"{data_dir}: {', '.join(present) or 'none'}{did_you_mean(name, present)}")
    return path
