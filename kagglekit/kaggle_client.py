"""The Kaggle edge: download competition files, submit, fetch leaderboard scores.

Uses the real ``kaggle`` package, imported lazily (never at start-up) and silenced: ``import kaggle``
authenticates on import and prints to stdout. Credentials come from the usual places
(``~/.kaggle/kaggle.json``, ``KAGGLE_CONFIG_DIR``, ``KAGGLE_USERNAME``/``KAGGLE_KEY``,
``KAGGLE_API_TOKEN``) and are never printed, logged or stored in a run. HTTP errors become one line;
rate limits and network failures are retried with backoff first.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .errors import DataError, KKError
from .files import umask_mode
from .spec import Competition
from .workspace import Workspace

T = TypeVar("T")
RETRIES = 4
BACKOFF_S = float(os.environ.get("KK_KAGGLE_BACKOFF", "1.0"))


class KaggleError(KKError):
    """Kaggle refused a request or could not be reached."""


def _config_dir() -> Path:
    env = os.environ.get("KAGGLE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    return home / ".kaggle" if (home / ".kaggle").is_dir() or not (home / ".config" / "kaggle").is_dir() \
        else home / ".config" / "kaggle"


def credentials_source() -> str | None:
    """Where credentials would come from (a description, never the secret), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    folder = _config_dir()
    for name in ("access_token", "kaggle.json"):
        if (folder / name).is_file():
            return str(folder / name)
    return None


NO_CREDENTIALS = ("no Kaggle credentials: on kaggle.com open Settings > API > Create New Token and save kaggle.json "
                  "to ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN")


def _api() -> Any:
    """An authenticated ``KaggleApi``; imported here, silently, only when needed."""
    if credentials_source() is None:
        raise KaggleError(NO_CREDENTIALS)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi
        except ImportError:
            raise KaggleError("the Kaggle client is not installed: pip install 'kagglekit[kaggle]'") from None
        api = KaggleApi()
        env = os.environ.get("KK_KAGGLE_ENV", "prod").lower()
        if env not in ("prod", "local", "staging", "admin"):
            raise KaggleError(f"KK_KAGGLE_ENV={env!r}: expected prod, local, staging or admin")
        if env != "prod":  # the client's own environment flags (local: a server on http://localhost)
            api.args = [*getattr(api, "args", []), f"--{env}"]
        try:
            api.authenticate()
        except (Exception, SystemExit) as e:
            raise KaggleError(f"Kaggle credentials from {credentials_source()} were not accepted: "
                              f"{type(e).__name__}") from None
    return api


def _call(fn: Callable[[], T], slug: str, what: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run one client call; retry rate limits (429) and network failures with backoff; turn HTTP
    errors into one actionable line."""
    import requests

    for attempt in range(RETRIES + 1):
        try:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink):
                return fn()
        except requests.exceptions.HTTPError as e:
            code = e.response.status_code if e.response is not None else None
            if code == 429 and attempt < RETRIES:
                sleep(BACKOFF_S * 2 ** attempt)
                continue
            raise KaggleError(_http_message(code, slug, what)) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            if attempt < RETRIES:
                sleep(BACKOFF_S * 2 ** attempt)
                continue
            raise KaggleError(f"cannot reach Kaggle to {what} after {RETRIES + 1} attempts "
                              f"({type(e).__name__}); check the network and try again") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _http_message(code: int | None, slug: str, what: str) -> str:
    if code == 401:
        return (f"Kaggle rejected the credentials from {credentials_source()} (HTTP 401) while trying to {what}; "
                "create a new API token on kaggle.com (Settings > API)")
    if code == 403:
        return (f"Kaggle refused to {what} for {slug!r} (HTTP 403): accept the competition's rules first at "
                f"https://www.kaggle.com/competitions/{slug}/rules")
    if code == 404:
        return f"unknown competition {slug!r} on Kaggle (HTTP 404); check 'slug' in the competition's spec"
    if code == 429:
        return f"Kaggle is rate-limiting requests (HTTP 429) to {what} after {RETRIES} retries; try again later"
    return f"Kaggle answered HTTP {code} while trying to {what} for {slug!r}"


# -- download ---------------------------------------------------------------------------------

MAX_RATIO = 200  # uncompressed / compressed size of one member; CSVs compress 5-20x, a zip bomb 1000x


def safe_extract(archive: Path, dest: Path) -> list[Path]:
    """Extract a zip into ``dest``, refusing members that would escape it (absolute paths, ``..``,
    symlinks), members that expand more than ``MAX_RATIO`` times (zip bombs), archives larger than
    the free disk space, and checking every file against the archive's declared size and CRC."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive}: not a readable zip archive ({e}); the download is incomplete") from None
    with zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        free = shutil.disk_usage(dest).free
        if total > free:
            raise DataError(f"{archive}: expands to {total / 1e9:.1f} GB, more than the {free / 1e9:.1f} GB free "
                            f"under {dest}")
        for m in members:
            if m.file_size > 10_000_000 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
                ratio = m.file_size / max(m.compress_size, 1)
                raise DataError(f"{archive}: member {m.filename!r} would expand {ratio:,.0f}"
                                f" times ({m.compress_size:,} -> {m.file_size:,} bytes): a zip bomb; refusing it")
        for m in members:
            name = m.filename
            mode = m.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"{archive}: member {name!r} is a symbolic link; refusing to extract")
            target = (dest / name).resolve()
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or not target.is_relative_to(dest) \
                    or (len(name) > 1 and name[1] == ":"):
                raise DataError(f"{archive}: member {name!r} would be written outside {dest}; refusing to extract")
        for m in members:
            target = (dest / m.filename).resolve()
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(m) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > m.file_size:
                            raise DataError(f"{archive}: member {m.filename!r} is larger than its declared "
                                            f"{m.file_size} bytes; refusing it")
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:  # bad CRC, truncated data
                raise DataError(f"{archive}: member {m.filename!r} is damaged ({e}); the download is incomplete, "
                                "try again") from None
            if written != m.file_size:
                raise DataError(f"{archive}: member {m.filename!r} has {written} bytes, declared {m.file_size}")
            out.append(target)
    return out


def download(comp: Competition, ws: Workspace, *, force: bool = False) -> Path:
    """Download and extract the competition's files into its data folder. Everything lands in a
    temporary folder first and is renamed into place at the end: an interrupted download never
    leaves a folder that looks complete."""
    if comp.builtin:
        raise KaggleError(f"{comp.name} is built into kagglekit, not a Kaggle competition: its data is generated "
                          f"on first use (e.g. kk baseline {comp.name}); there is nothing to download")
    dest = ws.data_dir(comp)
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise KaggleError(f"{dest} already holds files; pass --force to download again (the old folder is kept "
                          f"as {dest.name}.old-<time>)")
    api = _api()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.download."))
    work.chmod(umask_mode(directory=True))
    try:
        _call(lambda: api.competition_download_files(comp.slug, path=str(work / "zip"), force=True, quiet=True),
              comp.slug, "download the competition's files")
        archives = sorted((work / "zip").glob("*"))
        if not archives:
            raise KaggleError(f"Kaggle sent no file for {comp.slug!r}")
        files = work / "files"
        files.mkdir()
        for a in archives:  # everything is checked before the old folder is touched
            with open(a, "rb") as f:
                looks_zip = f.read(4) == b"PK\x03\x04"
            if zipfile.is_zipfile(a) or looks_zip or a.suffix.lower() == ".zip":
                safe_extract(a, files)  # a truncated zip (no central directory) is refused here
            else:
                shutil.move(str(a), files / a.name)
        if dest.exists():
            dest.rename(dest.with_name(f"{dest.name}.old-{datetime.now():%Y%m%d-%H%M%S}"))
        files.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


# -- submissions ------------------------------------------------------------------------------

def submit(comp: Competition, ws: Workspace, file: Path, message: str, run_id: str | None = None) -> dict[str, Any]:
    """Validate ``file`` against the sample submission, then submit it; record it in the run."""
    from .data import load_data
    from .runs import RunStore, write_json
    from .submissions import check_submission, read_submission

    data = load_data(comp, ws)
    check_submission(data, read_submission(file), Path(file).name)  # an invalid file is never sent
    api = _api()
    resp = _call(lambda: api.competition_submit(str(file), message, comp.slug, quiet=True), comp.slug,
                 "submit")
    msg = getattr(resp, "message", "") or ""
    if "fail" in msg.lower():
        raise KaggleError(f"submission of {file} failed: {msg}")
    record = {"file": str(file), "message": message, "ref": getattr(resp, "ref", None), "kaggle_message": msg,
              "submitted": datetime.now(UTC).isoformat(timespec="seconds")}
    run_id = run_id or _run_of_file(Path(file).name, RunStore(ws, comp.name))
    if run_id:
        run = RunStore(ws, comp.name).get(run_id)
        log = run.path / "submissions.json"
        history = json.loads(log.read_text()) if log.is_file() else []
        write_json(log, [*history, record])
        record["run"] = run_id
    return record


def _run_of_file(file_name: str, store: Any) -> str | None:
    """Our submission files are named ``<run-id>.csv`` or ``<run-id>-<n>.csv``."""
    stem = Path(file_name).stem
    ids = sorted((r.id for r in store.runs(complete_only=False)), key=len, reverse=True)
    return next((i for i in ids if stem == i or stem.startswith(i + "-")), None)


def fetch_submissions(comp: Competition, ws: Workspace) -> list[dict[str, Any]]:
    """The competition's submissions with public/private scores; scores are written into the runs
    they came from, so ``kk runs`` shows CV beside LB."""
    from .runs import RunStore

    api = _api()
    subs = _call(lambda: api.competition_submissions(comp.slug), comp.slug, "list submissions") or []
    store = RunStore(ws, comp.name)
    rows = []
    for s in subs:
        row = {"file": s.file_name, "date": str(s.date) if s.date else None, "description": s.description,
               "status": getattr(s.status, "name", str(s.status)), "public": _float(s.public_score),
               "private": _float(s.private_score), "ref": s.ref}
        row["run"] = _run_of_file(s.file_name or "", store)
        if row["run"] and row["public"] is not None:
            run = store.get(row["run"])
            current = run.lb or {}
            if current.get("date") is None or (row["date"] or "") >= current.get("date", ""):
                run.update_scores(lb={"public": row["public"], "private": row["private"], "date": row["date"],
                                      "ref": row["ref"]})
        rows.append(row)
    return rows


def _float(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None
