"""The workspace: the folder holding ``competitions/``, and where data, runs and submissions go.

``Workspace.find()`` looks in ``KK_HOME``, then from the current directory upward. Inside a Kaggle
notebook inputs come from ``/kaggle/input`` and every output goes under ``/kaggle/working``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SpecError, did_you_mean, one_of
from .spec import Competition, load_spec, validate_name


def shipped(inside: str, top: str, pattern: str) -> Path:
    """A folder of kagglekit's own files: ``kagglekit/<inside>`` of an installed wheel (which maps the
    repository's top-level ``<top>/`` there), else ``<top>/`` beside the package (a source checkout,
    an editable install). ``pattern`` tells a real one from an empty leftover."""
    packaged = Path(__file__).parent / inside
    return packaged if any(packaged.glob(pattern)) else Path(__file__).parent.parent / top


# built-ins and examples: the repository's competitions/, shipped in the wheel as kagglekit/competitions
PACKAGED_COMPETITIONS = shipped("competitions", "competitions", "*/competition.toml")
KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")


def on_kaggle() -> bool:
    """True inside a Kaggle notebook or script (Kaggle sets KAGGLE_KERNEL_RUN_TYPE)."""
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE")) or bool(os.environ.get("KAGGLE_URL_BASE") and
                                                                     KAGGLE_WORKING.is_dir())


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace. ``out`` is where runs, caches and submissions are written; ``store``,
    when set (``KK_RUNS_DIR``), holds ``runs/`` and ``submissions/`` instead: a folder shared by
    several machines (NFS, a synced drive), where every write is atomic and two processes never
    get the same run folder."""

    root: Path
    out: Path
    store: Path | None = None

    @classmethod
    def find(cls, start: Path | str | None = None) -> Workspace:
        home = os.environ.get("KK_HOME")
        if home:
            root = Path(home).expanduser().resolve()
            if not (root / "competitions").is_dir():
                raise SpecError(f"KK_HOME={home}: no competitions/ folder there; point KK_HOME at the "
                                "folder that holds competitions/")
            return cls.at(root)
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "competitions").is_dir():
                return cls.at(folder)
        if on_kaggle():  # a notebook: competitions are declared inline, everything goes to /kaggle/working
            return cls.at(KAGGLE_WORKING)
        raise SpecError(f"no kagglekit workspace found from {here} upward (a folder holding competitions/); "
                        "run 'kk init' to make this folder one, cd into one, or set KK_HOME=<folder>")

    @classmethod
    def for_competition(cls, comp: Competition | str) -> Workspace:
        """The workspace for ``comp``: found as usual for a name; for a competition declared in
        Python, the enclosing workspace if any, else the current folder (runs go to ./runs)."""
        if isinstance(comp, str):
            return cls.find()
        try:
            return cls.find()
        except SpecError:
            return cls.at(Path.cwd())

    @classmethod
    def at(cls, root: Path | str) -> Workspace:
        root = Path(root).resolve()
        out = KAGGLE_WORKING if on_kaggle() else root
        shared = os.environ.get("KK_RUNS_DIR")
        return cls(root=root, out=out, store=Path(shared).expanduser().resolve() if shared else None)

    # -- folders -----------------------------------------------------------------------------
    @property
    def competitions_dir(self) -> Path:
        return self.root / "competitions"

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @property
    def cache_dir(self) -> Path:
        return self.out / ".kk_cache"

    def runs_dir(self, competition: str) -> Path:
        return (self.store or self.out) / "runs" / validate_name(competition)

    def submissions_dir(self, competition: str) -> Path:
        return (self.store or self.out) / "submissions" / validate_name(competition)

    # -- competitions ------------------------------------------------------------------------
    def own_competition_names(self) -> list[str]:
        """Competitions declared in this workspace's ``competitions/``."""
        return _spec_folders(self.competitions_dir)

    def competition_names(self) -> list[str]:
        """This workspace's competitions and the ones shipped with kagglekit."""
        return sorted(set(self.own_competition_names()) | set(_spec_folders(PACKAGED_COMPETITIONS)))

    def competition_folder(self, name: str) -> Path | None:
        """``competitions/<name>/`` of the workspace, else the one shipped with kagglekit (the
        workspace's own overrides it), else None."""
        for root in (self.competitions_dir, PACKAGED_COMPETITIONS):
            if (root / validate_name(name) / "competition.toml").is_file():
                return root / name
        return None

    def competition(self, name: str) -> Competition:
        """Load and validate ``competitions/<name>/competition.toml`` (the workspace's, else kagglekit's)."""
        folder = self.competition_folder(name)
        if folder is None:
            names = self.competition_names()
            raise SpecError(f"unknown competition {name!r} in {self.competitions_dir}: known are "
                            f"{one_of(names) or 'none'}{did_you_mean(name, names)}; "
                            f"'kk new <slug>' scaffolds a new one")
        return load_spec(folder)

    def data_dir(self, comp: Competition) -> Path:
        """Where ``comp``'s files are read from.

        In order: the spec's ``data_dir``; ``$KK_DATA_DIR/<name>``; ``/kaggle/input/<slug>`` in a
        Kaggle notebook; ``<workspace>/data/<name>``. The first that exists wins; when none does,
        the place files should be downloaded or generated to.
        """
        if comp.data_dir:
            p = Path(comp.data_dir).expanduser()
            return p if p.is_absolute() else (comp.root / p).resolve()
        candidates = []
        env = os.environ.get("KK_DATA_DIR")
        if env:
            candidates.append(Path(env).expanduser().resolve() / comp.name)
        if on_kaggle():
            candidates += [KAGGLE_INPUT / comp.slug, KAGGLE_INPUT / "competitions" / comp.slug]
        local = self.root / "data" / comp.name
        candidates.append(local)
        for c in candidates:
            if c.is_dir():
                return c
        if comp.builtin:  # generated data goes to a folder we own
            return (self.out / "data" / comp.name) if on_kaggle() else local
        return candidates[0]


GITIGNORE = ("runs/", "data/", "submissions/", ".kk_cache/")
COMPETITIONS_README = """\
# Competitions of this workspace

One folder per competition: `<name>/competition.toml` (the spec), and a `features.py` beside it when
the competition has feature code. `kk new <slug>` writes a spec from the competition's files. A
folder here named like one of kagglekit's own (`kk list` shows them) replaces it.
"""


def init_workspace(folder: Path | str) -> tuple[Workspace, list[Path]]:
    """``kk init``: make ``folder`` a kagglekit workspace: ``competitions/`` (with a README),
    ``pipelines/`` (your recipes) and a ``.gitignore`` for what runs write. Creates only what is
    missing, never overwrites; returns the workspace and the paths it created."""
    root = Path(folder).expanduser().resolve()
    created: list[Path] = []
    for d in (root, root / "competitions", root / "pipelines"):
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            created.append(d)
    for path, text in ((root / "competitions" / "README.md", COMPETITIONS_README),
                       (root / ".gitignore", "\n".join(GITIGNORE) + "\n")):
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
            created.append(path)
        except FileExistsError:
            pass
    return Workspace.at(root), created


def _spec_folders(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "competition.toml").is_file())


def resolve(competition: Competition | str, workspace: Workspace | None = None) -> tuple[Workspace, Competition]:
    """The one way every library entry point gets its workspace and validated spec: a name is
    looked up in ``workspace`` (found from the current folder when None); a competition declared
    in Python (``kk.define_competition``) is used as it is."""
    ws = workspace or Workspace.for_competition(competition)
    return ws, competition if isinstance(competition, Competition) else ws.competition(competition)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def disk_full_message(error: OSError, ws: Workspace | None = None) -> str:
    """One line for ENOSPC: the folder, its free space, and what kagglekit itself holds there (the
    image cache, rebuilt when needed, and the runs), so the user knows what to delete."""
    import shutil

    target = Path(error.filename).parent if error.filename else (ws.out if ws else Path.cwd())
    while not target.exists() and target != target.parent:
        target = target.parent
    free = shutil.disk_usage(target).free
    held = ""
    if ws is not None:
        parts = [(name, _size(ws.out / name)) for name in (".kk_cache", "runs", "submissions")]
        held = "; kagglekit holds " + ", ".join(f"{name} {human_bytes(size)}" for name, size in parts if size)
    return (f"no space left on device writing in {target} ({human_bytes(free)} free{held}): free space there "
            "(the image cache .kk_cache is rebuilt when needed; old runs can go), or set KK_HOME to a workspace on a "
            "larger disk; nothing half-written is kept (an interrupted run is listed as incomplete and never reused)")


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
