"""Plug-ins in one process: import errors, changed or vanished files, entry points, registered
classes and signatures, losses and metrics by name, listings, load_model, Trainer progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from plugin_files import write_plugin
from trainlab import ConfigError
from trainlab.cli.main import main
from trainlab.plugins import PluginError, import_plugin, load_entry_points, use_run_plugins
from trainlab.registry import Registry

FAST = ["train.epochs=1", "--no-progress"]


@pytest.fixture(autouse=True)
def _no_inherited_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() tells the processes it starts which plug-ins to load (TRAINLAB_PLUGINS); other
    tests' processes must not inherit this file's plug-ins."""
    monkeypatch.delenv("TRAINLAB_PLUGINS", raising=False)


def _train(tmp_path: Path, tag: str, capsys) -> tuple[Path, Path]:
    plugin, recipe = write_plugin(tmp_path / "project", tag)
    rdir = tmp_path / "run"
    code = main(["train", str(recipe), *FAST, "--import", str(plugin), "--run-dir", str(rdir)])
    assert code == 0, capsys.readouterr().err
    return rdir, plugin


# -- registering -------------------------------------------------------------------------------
def test_class_with_positional_options_is_an_entry() -> None:
    reg: Registry = Registry("widget")

    @reg.register("net")
    class Net(nn.Module):
        def __init__(self, width: int, depth: int = 2) -> None:
            super().__init__()

    assert list(reg.options("net")) == ["width", "depth"]
    opt: Registry = Registry("optimizer", supplied=1)

    @opt.register("myopt")
    class MyOpt(torch.optim.SGD):
        pass  # SGD.__init__(self, params, lr=…, momentum=…): params is supplied by trainlab

    assert "params" not in opt.options("myopt") and "momentum" in opt.options("myopt")


def test_a_signature_trainlab_cannot_call_says_what_is_expected() -> None:
    from trainlab.optim.optimizers import OPTIMIZERS

    reg: Registry = Registry("model", expected="def my_net(*, num_classes: int = 10)")
    with pytest.raises(ConfigError) as e:
        reg.register("posonly")(lambda width, /: None)
    msg = str(e.value)
    assert "model 'posonly' (width, /): positional-only parameter 'width'" in msg
    assert msg.endswith("expected def my_net(*, num_classes: int = 10)")
    with pytest.raises(ConfigError, match=r"takes 0 positional parameter\(s\), trainlab passes 1"):
        OPTIMIZERS.register("no_params_opt")(lambda *, lr=0.1: None)


def test_an_import_path_in_a_recipe_is_refused_with_the_way_in(recipe, capsys) -> None:
    path = recipe("name: x\nmodel: {name: 'my_models:MyNet'}\ndata: {name: synthetic}\n")
    assert main(["train", str(path), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.name: unknown model 'my_models:MyNet': recipes name registered keys" in err
    assert "--import FILE" in err and len(err.splitlines()) == 1


# -- importing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source,expected",
    [
        ("x = 1\ndef f(:\n    pass\n", r"bad\.py:2: SyntaxError: invalid syntax"),
        ("import torch\n\nraise RuntimeError('no GPU here')\n",
         r"bad\.py:3: RuntimeError: no GPU here"),
        ("import not_a_module_anywhere\n",
         r"bad\.py:1: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        ("import trainlab\n\n@trainlab.register_model('lenet5')\ndef mine(*, w: int = 1):\n"
         "    pass\n", r"bad\.py:3: ValueError: model 'lenet5' is already registered"),
    ],
)  # fmt: skip
def test_a_failing_plugin_is_one_line_with_file_and_line(tmp_path, capsys, source, expected):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert main(["list", "--import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"trainlab: error: --import {bad}: {bad}:")
    import re

    assert re.search(expected, err), err


def test_missing_file_or_module(tmp_path, capsys) -> None:
    assert main(["list", "--import", str(tmp_path / "nope.py")]) == 2
    assert "nope.py: no such file" in capsys.readouterr().err
    assert main(["list", "--import", "no_such_module_xyz"]) == 2
    assert "no file or module named 'no_such_module_xyz'" in capsys.readouterr().err


def test_a_module_name_from_the_current_folder(tmp_path, monkeypatch) -> None:
    (tmp_path / "mymod_abc.py").write_text(
        "import trainlab\n\n@trainlab.register_loss('half_l1_abc')\n"
        "def half_l1(pred, target):\n    return (pred - target).abs().mean() / 2\n"
    )
    monkeypatch.chdir(tmp_path)
    plugin = import_plugin("mymod_abc")
    assert plugin.source == "module" and plugin.registered == ["losses/half_l1_abc"]
    assert import_plugin("mymod_abc") is plugin  # once per process


# -- run directories ---------------------------------------------------------------------------
def test_changed_or_vanished_plugin_is_refused(tmp_path, capsys) -> None:
    rdir, plugin = _train(tmp_path, "chg", capsys)
    use_run_plugins(rdir)  # unchanged: fine
    plugin.write_text(plugin.read_text() + "\n# edited\n")
    with pytest.raises(PluginError, match=r"has changed since \(sha256 \w+… then, \w+… now\)"):
        use_run_plugins(rdir)
    assert main(["eval", str(rdir)]) == 2
    assert "--allow-changed-plugins" in capsys.readouterr().err
    assert main(["eval", str(rdir), "--allow-changed-plugins"]) == 0
    assert "trainlab: warning:" in capsys.readouterr().err
    from trainlab.plugins import allow_changed_plugins

    allow_changed_plugins(False)
    plugin.unlink()
    with pytest.raises(PluginError, match=r"my_code_chg\.py, which no longer exists"):
        use_run_plugins(rdir)


def test_python_api_records_and_loads_the_model(tmp_path, capsys) -> None:
    import trainlab

    rdir, _ = _train(tmp_path, "api", capsys)
    model = trainlab.load_model(rdir)  # the three lines of the README, minus the input
    assert not model.training and type(model).__name__ == "TinyNet"
    data = trainlab.build_data("blobs_api")
    data.setup("cpu")
    x, y = data.splits["test"]
    with torch.no_grad():
        acc = model((x - torch.tensor(data.mean)) / torch.tensor(data.std)).argmax(-1) == y
        raw = trainlab.load_model(rdir, normalize=True)(x).argmax(-1) == y
    expected = json.loads((rdir / "eval_test.json").read_text())["test/acc"]
    assert acc.float().mean().item() == pytest.approx(expected, abs=1e-6)
    assert raw.float().mean().item() == pytest.approx(expected, abs=1e-6)


# -- entry points ------------------------------------------------------------------------------
def test_installed_entry_point_trains_and_is_recorded(tmp_path, monkeypatch, capsys) -> None:
    """A package with ``[project.entry-points."trainlab.plugins"]``, installed as pip lays it
    out (package + .dist-info with entry_points.txt) in a folder on sys.path."""
    site = tmp_path / "site"
    pkg = site / "tl_blobs_ep"
    plugin, recipe = write_plugin(tmp_path / "src", "ep")
    pkg.mkdir(parents=True)
    shutil.copy(plugin, pkg / "__init__.py")
    info = site / "tl_blobs_ep-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tl-blobs-ep\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[trainlab.plugins]\nblobs = tl_blobs_ep\n")
    monkeypatch.syspath_prepend(str(site))
    rdir = tmp_path / "run"
    assert main(["train", str(recipe), *FAST, "--run-dir", str(rdir)]) == 0  # no --import
    record = json.loads((rdir / "plugins.json").read_text())["plugins"]
    eps = [p for p in record if p["source"] == "entry_point"]
    assert [(p["spec"], p["dist"]) for p in eps] == [("blobs = tl_blobs_ep", "tl-blobs-ep 0.1")]
    assert main(["list", "models"]) == 0
    assert "blobs = tl_blobs_ep" in capsys.readouterr().out  # where tiny_net_ep comes from
    assert [p.spec for p in load_entry_points()] == ["blobs = tl_blobs_ep"]


# -- losses, metrics, listings, progress ---------------------------------------------------------
def test_registered_loss_and_metrics_by_name_on_the_builtin_tasks() -> None:
    from trainlab.tasks.classification import ClassificationTask, RegressionTask
    from trainlab.tasks.losses import register_loss

    @register_loss("scaled_ce_t")
    class ScaledCE(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.scale * nn.functional.cross_entropy(logits, y)

    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    task = ClassificationTask("scaled_ce_t", loss_options={"scale": "3"}, metrics=["mcc"])
    base = nn.functional.cross_entropy(logits, y)
    assert task.loss_fn(logits, y, 0.0).item() == pytest.approx(3 * base.item())
    assert {"mcc", "acc"} <= set(task.metrics(3).keys())
    reg = RegressionTask("mse", metrics=["MeanAbsolutePercentageError"])
    assert "MeanAbsolutePercentageError" in reg.metrics(None).keys()
    with pytest.raises(ConfigError, match="'mse' is not a classification loss; valid: .*scaled"):
        ClassificationTask("mse")
    with pytest.raises(ConfigError, match="loss_options.scal: unknown option .*'scale'"):
        ClassificationTask("scaled_ce_t", loss_options={"scal": 2})
    with pytest.raises(ConfigError, match="takes no label_smoothing"):
        ClassificationTask("scaled_ce_t", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="unknown metric 'kapa'.*torchmetrics class name"):
        ClassificationTask(metrics=["kapa"]).metrics(3)


def test_list_every_kind_and_a_data_source_options(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal's width
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("models", "data", "tasks", "losses", "metrics", "optimizers", "schedulers",
                 "callbacks"):  # fmt: skip
        assert kind in out
    assert main(["list", "data", "image_folder"]) == 0
    out = capsys.readouterr().out
    for text in ("transforms.resize", "shorter side to this many pixels", "on_error",
                 "Literal['raise', 'skip']", "mode"):  # fmt: skip
        assert text in out
    assert main(["list", "loss"]) == 0 and "cross_entropy" in capsys.readouterr().out
    assert main(["list", "optim", "sgd"]) == 0 and "momentum" in capsys.readouterr().out
    assert main(["list", "models", "mlp"]) == 0 and "list[int]" in capsys.readouterr().out
    assert main(["list", "modles"]) == 2
    assert "did you mean 'models'" in capsys.readouterr().err


def test_trainer_fit_shows_epoch_lines_unless_quiet(capsys) -> None:
    from trainlab import Trainer, build_data, create_model
    from trainlab.tasks.classification import ClassificationTask

    data = build_data("synthetic", n_train=64, n_val=32, n_test=32)
    data.setup("cpu")
    for progress in (True, False):
        model = create_model("mlp", in_features=64, num_classes=4)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = Trainer(epochs=2, device="cpu", precision="fp32", progress=progress)
        trainer.fit(model, ClassificationTask(), data, opt)
        err = capsys.readouterr().err
        assert ("epoch 2/2  loss" in err and "val_acc" in err) is progress


def test_the_readme_example_trains(tmp_path, capsys) -> None:
    """README's "Your own code": its my_code.py and blobs.yaml, as printed, train and load."""
    import re

    import trainlab

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own code", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    recipe = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "my_code.py").write_text(code)
    (tmp_path / "blobs.yaml").write_text(recipe)
    rdir = tmp_path / "runs" / "blobs"
    args = ["train", str(tmp_path / "blobs.yaml"), "train.epochs=1", "data.n=400", "--no-progress",
            "train.report=false", "train.tensorboard=false",
            "--import", str(tmp_path / "my_code.py"), "--run-dir", str(rdir)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert "test/error_rate" in json.loads((rdir / "summary.json").read_text())["test"]
    model = trainlab.load_model(rdir, normalize=True)
    assert model(torch.randn(5, 8)).shape == (5, 3)


def test_an_entry_point_function_is_called_and_its_failure_named(tmp_path, monkeypatch) -> None:
    site = tmp_path / "site"
    (site / "tl_hook_pkg").mkdir(parents=True)
    (site / "tl_hook_pkg" / "__init__.py").write_text(
        "import trainlab\n\ndef register():\n"
        "    trainlab.register_loss('hooked_l1')(lambda p, t: (p - t).abs().mean())\n\n"
        "def broken():\n    raise KeyError('missing table')\n"
    )
    info = site / "tl_hook_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tl-hook-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[trainlab.plugins]\nhook = tl_hook_pkg:register\n")
    monkeypatch.syspath_prepend(str(site))
    found = [p for p in load_entry_points() if p.dist == "tl-hook-pkg 1.0"]
    assert [p.registered for p in found] == [["losses/hooked_l1"]]
    (info / "entry_points.txt").write_text("[trainlab.plugins]\nbad = tl_hook_pkg:broken\n")
    with pytest.raises(PluginError) as e:
        load_entry_points()
    msg = str(e.value)
    assert msg.startswith("entry point 'bad = tl_hook_pkg:broken' of tl-hook-pkg 1.0: ")
    assert "__init__.py:7: KeyError: 'missing table'" in msg


def test_a_plain_torch_dataset_becomes_a_data_source(tmp_path, capsys) -> None:
    plugin = tmp_path / "my_dataset.py"
    plugin.write_text('''
import torch
from torch.utils.data import Dataset

import trainlab
from trainlab.data import from_datasets


class Parity(Dataset):
    """(x, y) pairs: four features, label = whether their sum is positive."""

    def __init__(self, n, seed):
        self.x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.x[i].sum() > 0)


@trainlab.register_data("parity_ds")
def parity_ds(*, n: int = 400, batch_size: int = 32, seed: int = 0):
    """A torch Dataset, as users have them."""
    return from_datasets(Parity(n, 1), test=Parity(n // 4, 2), val_fraction=0.25,
                         batch_size=batch_size, seed=seed)
''')
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: ds\ndata: {name: parity_ds}\nmodel: {name: mlp, hidden: [16]}\n"
        "optim: {name: adam, lr: 0.02}\ntrain: {epochs: 3, device: cpu, report: false, "
        "tensorboard: false}\n"
    )
    rdir = tmp_path / "run"
    args = ["train", str(path), "--import", str(plugin), "--run-dir", str(rdir), "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    data = json.loads((rdir / "data.json").read_text())
    assert data["num_classes"] == 2 and data["sizes"] == {"train": 300, "val": 100, "test": 100}
    assert json.loads((rdir / "summary.json").read_text())["test"]["test/acc"] > 0.8

    from trainlab.data import from_datasets
    from trainlab.errors import DataError

    class Triples(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
            return torch.zeros(2), 0, 1

    with pytest.raises(DataError, match="split 'train': samples must be \\(x, y\\) pairs"):
        from_datasets(Triples()).setup("cpu")


def test_a_plugin_callback_named_in_the_recipe(tmp_path, capsys) -> None:
    plugin = tmp_path / "my_callbacks.py"
    plugin.write_text(
        "import trainlab\n\n\n@trainlab.register_callback('epoch_log_t')\nclass EpochLog:\n"
        "    def __init__(self, path: str, every: int = 1):\n"
        "        self.path, self.every = path, every\n\n"
        "    def on_epoch_end(self, state):\n"
        "        with open(self.path, 'a') as f:\n"
        "            f.write(f\"{state.epoch} {state.metrics['val/acc']:.3f}\\n\")\n"
    )
    log = tmp_path / "epochs.txt"
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: cb\ndata: {name: synthetic, n_train: 64, n_val: 32, n_test: 32}\n"
        "model: {name: mlp, hidden: [8]}\noptim: {name: sgd, lr: 0.1}\n"
        f"callbacks: [{{name: epoch_log_t, path: '{log}'}}]\n"
        "train: {epochs: 2, device: cpu, report: false, tensorboard: false}\n"
    )
    args = ["train", str(path), "--import", str(plugin), "--run-dir", str(tmp_path / "run"),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["1", "2"]


def test_forecasting_takes_a_registered_loss_and_metrics() -> None:
    from trainlab.tasks.forecasting import ForecastingTask
    from trainlab.tasks.losses import register_loss

    @register_loss("half_mse_fc")
    def half_mse(pred: torch.Tensor, target: torch.Tensor, *, w: float = 0.5) -> torch.Tensor:
        return w * ((pred - target) ** 2).mean()

    task = ForecastingTask("half_mse_fc", {"w": 0.25}, ["MeanAbsolutePercentageError"])
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2, 3))
    x, y = torch.randn(4, 8, 2), torch.randn(4, 3, 1)
    out = task.train_step(model, (x, y))
    expected = 0.25 * ((model(x).reshape(y.shape) - y) ** 2).mean()
    assert out.loss.item() == pytest.approx(expected.item())
    assert "MeanAbsolutePercentageError" in task.metrics(None).keys()
    with pytest.raises(ConfigError, match="'cross_entropy' is not a regression loss"):
        ForecastingTask("cross_entropy")


def test_a_module_whose_package_fails_names_the_package_file(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "half_installed_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('libfoo.so not found')\n")
    (pkg / "parts.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    assert main(["list", "--import", "half_installed_pkg.parts"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"trainlab: error: --import half_installed_pkg.parts: {pkg}/__init__.py:1: "
                   "ImportError: libfoo.so not found")  # fmt: skip
