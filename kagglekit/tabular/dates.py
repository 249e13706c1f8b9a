"""fastai's ``add_datepart``: date columns expanded into the parts trees can split on."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DATE_PARTS = ("Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
              "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start")
TIME_PARTS = ("Hour", "Minute", "Second")
_ACCESSOR = {"Dayofweek": "day_of_week", "Dayofyear": "day_of_year"}  # pandas' current names


def date_prefix(field_name: str) -> str:
    """The prefix of the date parts made from ``field_name``: ``saledate`` -> ``sale``, fastai's rule."""
    return re.sub("[Dd]ate$", "", field_name)


def date_part_names(field_name: str, prefix: str | None = None, time: bool = False) -> list[str]:
    """The columns :func:`add_datepart` makes from ``field_name`` (``saledate`` -> ``saleYear``, ...)."""
    prefix = date_prefix(field_name) if prefix is None else prefix
    return [prefix + name for name in (*DATE_PARTS, *(TIME_PARTS if time else ()), "Elapsed")]


def add_datepart(df: pd.DataFrame, field_name: str, prefix: str | None = None, drop: bool = True,
                 time: bool = False) -> pd.DataFrame:
    """Return a copy of ``df`` with ``field_name`` expanded into fastai's date parts.

    Names and meanings follow fastai: ``Year, Month, Week`` (ISO week), ``Day, Dayofweek``
    (Monday=0), ``Dayofyear, Is_month_end, Is_month_start, Is_quarter_end, Is_quarter_start,
    Is_year_end, Is_year_start, Elapsed`` (seconds since 1970-01-01), plus ``Hour, Minute, Second``
    with ``time=True``. The prefix is the column name minus a trailing ``date``/``Date``
    (``saledate`` -> ``saleYear``). A missing or unparseable date gives NaN parts. Unlike fastai's,
    this version does not modify ``df`` in place.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"saledate": ["2011-03-14", "2012-12-31"], "price": [10, 20]})
    >>> out = add_datepart(df, "saledate")
    >>> out[["saleYear", "saleMonth", "saleDayofweek", "saleIs_year_end"]]
       saleYear  saleMonth  saleDayofweek  saleIs_year_end
    0    2011.0        3.0            0.0              0.0
    1    2012.0       12.0            0.0              1.0
    >>> "saledate" in out.columns, "saledate" in df.columns
    (False, True)
    """
    if field_name not in df.columns:
        raise KeyError(f"add_datepart: no column {field_name!r}; columns are {list(df.columns)}")
    field = df[field_name]
    if not pd.api.types.is_datetime64_any_dtype(field):
        field = pd.to_datetime(field, errors="coerce", format="mixed")
    prefix = date_prefix(field_name) if prefix is None else prefix
    missing = field.isna().to_numpy()
    parts: dict[str, np.ndarray] = {}
    for name in DATE_PARTS + (TIME_PARTS if time else ()):
        accessor = _ACCESSOR.get(name, name.lower())
        values = field.dt.isocalendar().week if name == "Week" else getattr(field.dt, accessor)
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        arr[missing] = np.nan
        parts[prefix + name] = arr
    elapsed = (field - pd.Timestamp("1970-01-01", tz=field.dt.tz)).dt.total_seconds().to_numpy(np.float64, copy=True)
    elapsed[missing] = np.nan
    parts[prefix + "Elapsed"] = elapsed
    out = df.drop(columns=[field_name]) if drop else df.copy()
    return out.assign(**{k: pd.Series(v, index=df.index) for k, v in parts.items()})
