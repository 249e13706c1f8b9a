import pytest

from kagglekit.errors import OptionError, SpecError
from kagglekit.spec import load_spec, validate_name
from kagglekit.workspace import Workspace

from .conftest import REPO, write_spec

GOOD = """
slug = "demo"
id = "id"
metric = "accuracy"
[[targets]]
name = "y"
task = "binary"
[[targets]]
name = "aux"
task = "multiclass"
submit = false
[cv]
kind = "stratified"
k = 3
"""


def test_valid_spec_reads_into_frozen_dataclasses(ws_path):
    comp = load_spec(write_spec(ws_path, "demo", GOOD))
    assert comp.name == "demo" and comp.id_column == "id" and comp.cv.k == 3
    assert [t.name for t in comp.submitted_targets] == ["y"]
    assert comp.target("aux").submit is False
    with pytest.raises(AttributeError):
        comp.metric = "auc"  # frozen


@pytest.mark.parametrize("bad, fragment", [
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'\n[cv]\nknd = 'kfold'",
     "key 'cv.knd': unknown key; allowed keys here are"),
    ("id = 'id'\nmetric = 'acuracy'\n[[targets]]\nname='y'\ntask='binary'", "did you mean 'accuracy'"),
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binar'", "key 'targets[0].task': expected 'binary'"),
    ("metric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'", "key 'id': is required but missing"),
    ("id = 'id'\nmetric = 'accuracy'", "key 'targets': is required"),
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'\n[cv]\nk = 'five'",
     "key 'cv.k': expected int, found str 'five'"),
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'\n[cv]\nkind = 'group'",
     "kind = 'group' needs group"),
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'\nsubmit=false", "at least one target"),
    ("id = 'id'\nmetric = 'accuracy'\nkind='image'\n[[targets]]\nname='y'\ntask='binary'", "needs an [image] table"),
    ("id = 'id'\nmetric = 'accuracy'\n[[targets]]\nname='y'\ntask='binary'\nsumbit = true", "did you mean 'submit'"),
])
def test_bad_specs_fail_with_one_line_naming_file_and_key(ws_path, bad, fragment):
    folder = write_spec(ws_path, "demo", bad)
    with pytest.raises(SpecError) as e:
        load_spec(folder)
    msg = str(e.value)
    assert fragment in msg
    assert str(folder / "competition.toml") in msg
    assert "\n" not in msg


def test_malformed_toml(ws_path):
    folder = write_spec(ws_path, "demo", "id = \n")
    with pytest.raises(SpecError, match="malformed TOML"):
        load_spec(folder)


def test_missing_spec_file_suggests_fix(tmp_path):
    with pytest.raises(SpecError, match="kk new"):
        load_spec(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["../etc", "/abs", "a/b", "..", "", ".hidden", "a..b"])
def test_traversal_names_are_refused(name):
    with pytest.raises(SpecError, match="invalid competition name"):
        validate_name(name)


def test_workspace_refuses_traversal_and_suggests_names(ws_path):
    write_spec(ws_path, "demo", GOOD)
    ws = Workspace.at(ws_path)
    with pytest.raises(SpecError, match="invalid competition name"):
        ws.competition("../demo")
    with pytest.raises(SpecError, match="did you mean 'demo'"):
        ws.competition("dem")


def test_workspace_found_upward_and_from_kk_home(ws_path, monkeypatch):
    sub = ws_path / "a" / "b"
    sub.mkdir(parents=True)
    assert Workspace.find(sub).root == ws_path.resolve()
    monkeypatch.setenv("KK_HOME", str(ws_path))
    assert Workspace.find("/").root == ws_path.resolve()
    monkeypatch.setenv("KK_HOME", str(sub))
    with pytest.raises(SpecError, match="no competitions/ folder"):
        Workspace.find()


def test_data_dir_resolution(ws_path, monkeypatch, tmp_path_factory):
    write_spec(ws_path, "demo", GOOD)
    ws = Workspace.at(ws_path)
    comp = ws.competition("demo")
    assert ws.data_dir(comp) == ws_path / "data" / "demo"
    shared = tmp_path_factory.mktemp("shared")
    (shared / "demo").mkdir()
    monkeypatch.setenv("KK_DATA_DIR", str(shared))
    assert ws.data_dir(comp) == shared / "demo"


def test_shipped_specs_are_valid():
    ws = Workspace.at(REPO)
    names = ws.competition_names()
    for required in ("titanic", "bike-sharing-demand", "paddy-disease-classification", "mnist-tiny",
                     "playground-churn", "playground-shapes"):
        assert required in names
    for name in names:
        comp = ws.competition(name)
        assert comp.name == name
    assert ws.competition("paddy-disease-classification").target("variety").submit is False
    assert ws.competition("bike-sharing-demand").cv.kind == "group"


@pytest.mark.parametrize("slug", ["../../evil", "/etc", "a/b"])
def test_a_slug_that_is_a_path_is_refused(tmp_path, slug):
    from kagglekit.spec import parse_spec

    with pytest.raises(SpecError, match="key 'slug': invalid Kaggle slug"):
        parse_spec({"slug": slug, "id": "id", "metric": "accuracy", "targets": [{"name": "y", "task": "binary"}]},
                   tmp_path / "c" / "competition.toml")


def test_every_metric_get_metric_knows_is_accepted_by_the_spec(tmp_path):
    from kagglekit.metrics import get_metric, list_metrics
    from kagglekit.spec import parse_spec

    for name in [*list_metrics(), "map@7", "map@3"]:
        comp = parse_spec({"id": "id", "metric": name, "targets": [{"name": "y", "task": "multiclass"}]},
                          tmp_path / "c" / "competition.toml")
        assert get_metric(comp.metric).name == name
    with pytest.raises(SpecError, match="key 'metric'"):
        parse_spec({"id": "id", "metric": "map@", "targets": [{"name": "y", "task": "multiclass"}]},
                   tmp_path / "c" / "competition.toml")


@pytest.mark.parametrize(("flag", "value"), [("resize", "crpo"), ("device", "gpu")])
def test_a_misspelt_choice_is_refused_not_silently_replaced(flag, value):
    pytest.importorskip("torch")
    from kagglekit.vision.config import TrainConfig

    with pytest.raises(OptionError, match=f"--{flag}: expected one of .*found '{value}'"):
        TrainConfig(**{flag: value})
