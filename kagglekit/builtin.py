"""Built-in competitions: data generated on first use by deterministic generators, so kagglekit
runs end to end with no download and no credentials. Their hidden test labels are written to
``solution.csv``, so submissions can be scored locally (``kk score``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SpecError, did_you_mean, one_of
from .files import umask_mode

GENERATORS: dict[str, Callable[[Path], None]] = {}


def register_generator(name: str):
    def wrap(fn: Callable[[Path], None]):
        GENERATORS[name] = fn
        return fn

    return wrap


def generate(name: str, data_dir: Path) -> Path:
    """Generate built-in data set ``name`` into ``data_dir`` (atomically: all files or none)."""
    if name not in GENERATORS:
        raise SpecError(f"unknown built-in generator {name!r}: expected {one_of(sorted(GENERATORS))}"
                        f"{did_you_mean(name, GENERATORS)}")
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        return data_dir
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=f".{data_dir.name}."))
    tmp.chmod(umask_mode(directory=True))
    try:
        GENERATORS[name](tmp)
        if data_dir.exists():
            data_dir.rmdir()  # empty
        tmp.rename(data_dir)
    except FileExistsError:  # another process generated it first
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data_dir


def _split_and_write(df: pd.DataFrame, out: Path, id_col: str, targets: list[str], submitted: list[str],
                     n_test: int, rng: np.random.Generator, sample_fill: dict[str, object]) -> None:
    test_idx = rng.choice(len(df), n_test, replace=False)
    is_test = np.zeros(len(df), bool)
    is_test[test_idx] = True
    train, test = df[~is_test], df[is_test]
    train.to_csv(out / "train.csv", index=False)
    test.drop(columns=targets).to_csv(out / "test.csv", index=False)
    test[[id_col, *submitted]].to_csv(out / "solution.csv", index=False)
    sample = test[[id_col]].copy()
    for c, v in sample_fill.items():
        sample[c] = v
    sample.to_csv(out / "sample_submission.csv", index=False)


@register_generator("churn")
def churn(out: Path, n: int = 6000, n_test: int = 2000, seed: int = 0) -> None:
    """Customer churn (binary, AUC): a date column, categorical columns with missing values,
    numeric columns with missing values and a free-text column that should be dropped."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], n, p=[0.5, 0.3, 0.2])
    contract = rng.choice(["monthly", "annual"], n, p=[0.65, 0.35])
    region = rng.choice(list("ABCDEFGH"), n).astype(object)
    age = rng.normal(42, 12, n).clip(18, 90).round()
    support_calls = rng.poisson(1.5, n)
    monthly_spend = np.round(np.where(plan == "premium", 80, np.where(plan == "standard", 45, 20))
                             * rng.lognormal(0, 0.25, n), 2)
    signup = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 4 * 365, n), unit="D")
    tenure_years = (pd.Timestamp("2023-01-01") - signup).days.to_numpy() / 365
    region_effect = {"A": 0.6, "B": 0.3, "C": 0.0, "D": -0.2, "E": -0.4, "F": 0.1, "G": 0.0, "H": -0.6}
    logit = (-1.0 + 1.1 * (plan == "basic") - 0.5 * (plan == "premium") - 1.0 * (contract == "annual")
             + 0.45 * support_calls - 0.03 * (age - 42) - 0.45 * tenure_years
             + 0.9 * (signup.month == 12) + np.array([region_effect[r] for r in region])
             + rng.normal(0, 0.5, n))
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    names = [f"{rng.choice(['Ann', 'Bo', 'Cy', 'Di', 'Ed', 'Flo'])} {rng.integers(10**5, 10**6)}" for _ in range(n)]
    df = pd.DataFrame({
        "customer_id": np.arange(100_001, 100_001 + n), "signup_date": signup.strftime("%Y-%m-%d"),
        "plan": plan, "contract": contract, "region": region, "age": age, "support_calls": support_calls,
        "monthly_spend": monthly_spend, "customer_name": names, "churned": churned,
    })
    df.loc[rng.random(n) < 0.06, "region"] = np.nan
    df.loc[rng.random(n) < 0.08, "age"] = np.nan
    df.loc[rng.random(n) < 0.02, "signup_date"] = np.nan
    _split_and_write(df, out, "customer_id", ["churned"], ["churned"], n_test, rng, {"churned": 0.5})


SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 220)}


@register_generator("shapes")
def shapes(out: Path, n: int = 900, n_test: int = 300, size: int = 48, seed: int = 0) -> None:
    """Images of one coloured shape on a noisy background. Two targets: ``shape`` (submitted)
    and ``colour`` (auxiliary)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        shape, colour = SHAPES[rng.integers(3)], list(COLOURS)[rng.integers(3)]
        bg = rng.integers(0, 90, (size, size, 3), dtype=np.uint8) + rng.integers(60, 140)
        img = Image.fromarray(bg.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        r = int(rng.integers(size // 6, size // 3))
        cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
        fill = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in COLOURS[colour])
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif shape == "square":
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
        image_id = f"img_{i:05d}.png"
        img.save(out / "images" / image_id)
        rows.append((image_id, shape, colour))
    df = pd.DataFrame(rows, columns=["image_id", "shape", "colour"])
    _split_and_write(df, out, "image_id", ["shape", "colour"], ["shape"], n_test, rng, {"shape": "circle"})
