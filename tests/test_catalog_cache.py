"""``trainlab models`` reads its table from a cache keyed by the model sources and overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab import plugins
from trainlab.catalog_cache import cache_key, cached_rows


def _counting_build(calls: list[int]):  # noqa: ANN202 - a tiny closure
    def build() -> list[tuple[str, int | None, str]]:
        calls.append(1)
        return [("mlp", 1234, "an MLP"), ("odd", None, "cannot be built on meta")]

    return build


@pytest.fixture(autouse=True)
def _models_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process has imported the models (and other tests' plug-ins); the CLI process
    # the cache serves has not.
    monkeypatch.delitem(sys.modules, "trainlab.models", raising=False)
    monkeypatch.setattr(plugins, "loaded_plugins", lambda: [])


def test_second_listing_comes_from_the_cache(tmp_path: Path) -> None:
    calls: list[int] = []
    first = cached_rows({"num_classes": 10}, _counting_build(calls), cache_dir=tmp_path)
    again = cached_rows({"num_classes": 10}, _counting_build(calls), cache_dir=tmp_path)
    assert first == again == [("mlp", 1234, "an MLP"), ("odd", None, "cannot be built on meta")]
    assert len(calls) == 1
    cached_rows({"num_classes": 3}, _counting_build(calls), cache_dir=tmp_path)
    assert len(calls) == 2  # other overrides, other key


def test_key_follows_the_model_sources(tmp_path: Path) -> None:
    import trainlab.catalog_cache as cc

    before = cache_key({})
    source = Path(cc.__file__).parent / "models" / "mlp.py"
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert cache_key({}) != before  # an edited model file is a new key
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache_key({}) == before


def test_plug_ins_bypass_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(plugins, "loaded_plugins", lambda: ["a plug-in"])
    cached_rows({}, _counting_build(calls), cache_dir=tmp_path)
    cached_rows({}, _counting_build(calls), cache_dir=tmp_path)
    assert len(calls) == 2 and not list(tmp_path.iterdir())


def test_an_unwritable_or_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    calls: list[int] = []
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert cached_rows({}, _counting_build(calls), cache_dir=blocked)[0][0] == "mlp"
    cached_rows({}, _counting_build(calls), cache_dir=tmp_path)
    (tmp_path / f"models-{cache_key({})}.json").write_text("{half a fi")
    assert cached_rows({}, _counting_build(calls), cache_dir=tmp_path)[0][0] == "mlp"
    assert len(calls) == 3


def test_cached_listing_does_not_import_torch(tmp_path: Path) -> None:
    # Without the plug-ins an earlier test of this process may have passed on to its children.
    env = {k: v for k, v in os.environ.items() if k != plugins.ENV_VAR}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    cmd = [sys.executable, "-c", "import sys; from trainlab.cli.main import main; "
           "main(['models']); print('torch' in sys.modules, file=sys.stderr)"]  # fmt: skip
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout and "fast_cnn" in first.stdout
    assert first.stderr.strip().endswith("True") and second.stderr.strip().endswith("False")
