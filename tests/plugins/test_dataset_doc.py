"""README "Add a dataset": its plugin example, copied out of the README into a throwaway package, is what
``layerbench list`` shows, its grid runs on the natural partition (the random test model), and a
``natural:`` column the plugin does not declare stops validation with exit code 2."""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path

import yaml

from tests.plugins.example_pkg import dist_info
from tests.plugins.test_plugins import ROOT, _cli

DIST = "mypkg"


def readme_blocks(title: str) -> dict[str, list[str]]:
    """The fenced code blocks of the README section ``## <title>``, by language."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    out: dict[str, list[str]] = {}
    for lang, code in re.findall(r"```(\w+)\n(.*?)```", body, re.S):
        out.setdefault(lang, []).append(code)
    return out


def write_plugin(root: Path, blocks: dict[str, list[str]]) -> str:
    """The README's package (its entry point, ``mypkg/data.py`` and 80 reviews from 4 shops); its name."""
    eps = next(tomllib.loads(b) for b in blocks["toml"] if "layerbench.datasets" in b)
    (name, target), *_ = eps["project"]["entry-points"]["layerbench.datasets"].items()
    pkg = root / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data.py").write_text(next(b for b in blocks["python"] if b.startswith("# mypkg/data.py")))
    words = {"good": ["great", "lovely", "fine"], "bad": ["awful", "broken", "late"]}
    with open(pkg / "reviews.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "shop"])
        for i in range(80):
            label = ("good", "bad")[i % 2]
            w.writerow([f"{words[label][i % 3]} item number {i}", label, f"shop{i % 4}"])
    dist_info(root, DIST, f"[layerbench.datasets]\n{name} = {target}\n")
    return name


def test_the_readme_dataset_plugin_lists_and_runs_on_its_natural_partition(tmp_path):
    blocks = readme_blocks("Add a dataset")
    root = tmp_path / "site"
    name = write_plugin(root, blocks)

    out = _cli(root, "list")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.split()[:1] == [name])
    assert f"[plugin {DIST}] Shop reviews, good vs bad, from 4 shops." in line

    grid = yaml.safe_load(next(b for b in blocks["yaml"] if b.startswith("# my_reviews.yaml")))
    assert grid["datasets"] == [name] and "natural:shop" in grid["alphas"]
    tiny = {"rounds": 1, "local_steps": 1, "batch_size": 8, "max_len": 16}
    grid |= {"model": "tiny-bert", "fl": grid["fl"] | tiny, "wandb": {"mode": "off"}}
    grid["output_dir"] = str(tmp_path / "results")
    cfg = tmp_path / "my_reviews.yaml"
    cfg.write_text(yaml.safe_dump(grid))
    out = _cli(root, "run", str(cfg), "--alpha", "natural:shop", "--method", "full", "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    (result,) = (tmp_path / "results" / "runs").glob("*/result.json")
    res = json.loads(result.read_text())
    assert res["status"] == "ok" and res["alpha"] == "natural:shop", res

    cfg.write_text(yaml.safe_dump(grid | {"alphas": ["natural:colour"]}))
    out = _cli(root, "run", str(cfg), "--dry-run")
    assert out.returncode == 2 and f"dataset '{name}' has no source column 'colour'" in out.stderr
