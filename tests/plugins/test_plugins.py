"""Methods, datasets and models from another package (entry points ``layerbench.methods`` /
``.datasets`` / ``.models``; issue 27 item 1): ``list`` shows them with their origin, ``run`` runs the
plugin method on the plugin dataset and model, a bad plugin param fails before torch loads, and a name
defined twice is an error naming both origins. Every CLI call is a fresh interpreter whose
``PYTHONPATH`` holds the throwaway package: nothing of this repository is edited."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fl_core.registry import BUILT_IN, PluginError, Registry
from tests.plugins.example_pkg import DIST, dist_info, write_package

ROOT = Path(__file__).resolve().parents[2]
TORCH_AFTER = (
    "import sys; from fl_core.cli import main; rc = main(sys.argv[1:]); "
    "print('rc', rc, 'torch' in sys.modules)"
)


@pytest.fixture
def plugin_root(tmp_path) -> Path:
    return write_package(tmp_path / "site")


def _cli(
    root: Path, *args: str, code: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)])}
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LAYERBENCH_CACHE": str(root.parent / "cache")}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fl_core.cli", *args]
    return subprocess.run(cmd, env=env, cwd=cwd or root.parent, capture_output=True, text=True, timeout=600)


def _grid(root: Path, **method) -> Path:
    grid = {
        "name": "plug",
        "model": "tiny-plugin-bert",
        "datasets": ["toy_reviews"],
        "alphas": ["natural:shop"],
        "seeds": [0],
        "methods": [{"name": "last_k", **method}],
        "fl": {"num_clients": 4, "clients_per_round": 2, "rounds": 1, "local_steps": 1, "batch_size": 8},
        "data": {"min_partition_size": 1},
        "wandb": {"mode": "off"},
        "output_dir": str(root.parent / "results"),
    }
    cfg = root.parent / "plug.yaml"
    cfg.write_text(yaml.safe_dump(grid))
    return cfg


def test_list_shows_plugins_with_their_origin_torch_free(plugin_root):
    out = _cli(plugin_root, "list", code=TORCH_AFTER)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "rc 0 False", "list must not load torch"
    named = {ln.split()[0]: ln for ln in lines if ln.startswith("  ") and not ln.startswith("   ")}
    assert f"[plugin {DIST}] The k blocks nearest the output + head" in named["last_k"]
    assert f"[plugin {DIST}] Toy shop reviews" in named["toy_reviews"]
    assert f"[plugin {DIST}] RANDOM WEIGHTS, tests only; 3 blocks, 64 positions" in named["tiny-plugin-bert"]
    assert "params: k=1" in out.stdout
    assert "[plugin" not in named["full"] and "[plugin" not in named["bbc_news"]


def test_run_runs_the_plugin_method_on_the_plugin_dataset_and_model(plugin_root):
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    out = _cli(plugin_root, "run", str(_grid(plugin_root)), "--method", "last_k", "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    results = list((plugin_root.parent / "results" / "runs").glob("*/result.json"))
    assert len(results) == 1
    res = json.loads(results[0].read_text())
    assert res["status"] == "ok", res
    info = json.dumps(res)
    assert "tiny-plugin-bert (RANDOM WEIGHTS, tests only)" in info and '"num_blocks": 3' in info
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        == before
    )


@pytest.mark.parametrize(
    ("params", "named"), [({"k": 4}, "k=4 but the model has 3 blocks"), ({"kk": 1}, "kk: unknown key")]
)
def test_bad_plugin_params_fail_with_rc2_before_torch_loads(plugin_root, params, named):
    out = _cli(plugin_root, "sweep", str(_grid(plugin_root, params=params)), code=TORCH_AFTER)
    assert out.stdout.splitlines()[-1] == "rc 2 False", out.stdout + out.stderr
    assert "methods[0].params (last_k)" in out.stderr and named in out.stderr


def test_a_plugin_reusing_a_name_is_an_error_naming_both_origins(plugin_root):
    dist_info(plugin_root, "lb-clash", "[layerbench.methods]\nfull = lb_example.params:DECLARED\n")
    out = _cli(plugin_root, "list")
    assert out.returncode == 2
    assert "method 'full' is defined twice: by built-in and by plugin lb-clash" in out.stderr
    assert "Traceback" not in out.stderr


def test_two_plugins_with_one_name_are_an_error_naming_both():
    reg: Registry[int] = Registry("dataset", {"bbc_news": 0})
    reg.add("toy", 1, "plugin a")
    with pytest.raises(PluginError, match="dataset 'toy' is defined twice: by plugin a and by plugin b"):
        reg.add("toy", 2, "plugin b")
    assert reg == {"bbc_news": 0, "toy": 1}
    assert reg.origins == {"bbc_news": BUILT_IN, "toy": "plugin a"}
    assert dict(reg.plugins()) == {"toy": 1}


def test_a_plugin_entry_point_of_the_wrong_kind_is_named(plugin_root):
    dist_info(plugin_root, "lb-wrong", "[layerbench.models]\nwrong = lb_example.data:DATASET\n")
    out = _cli(plugin_root, "list")
    assert out.returncode == 2
    assert "plugin lb-wrong: entry point wrong = 'lb_example.data:DATASET' (layerbench.models)" in out.stderr
    assert "expected a fl_core.model_specs.ModelEntry" in out.stderr


def _list_cpu_s(root: Path) -> float:
    """CPU seconds of one ``layerbench list`` (children's user + system: steadier than wall time on a
    shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert _cli(root, "list").returncode == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def test_plugins_keep_list_fast(plugin_root, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    _list_cpu_s(plugin_root)  # warm the file cache
    without = min(_list_cpu_s(bare) for _ in range(2))
    with_plugins = min(_list_cpu_s(plugin_root) for _ in range(2))
    assert with_plugins < without + 0.3, (without, with_plugins)
