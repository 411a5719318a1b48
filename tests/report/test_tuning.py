"""The report's learning-rate section: chosen lr, ties, every lr's objective, curves, tuning's share;
the per-partition record over seeds and the older one-alpha, one-seed record."""

from __future__ import annotations

import pandas as pd
import yaml

from fl_core.report.tuning import draw_tuning, tuning_section


def _record(tmp_path, **extra):
    path = tmp_path / "tuned" / "g.yaml"
    path.parent.mkdir()
    doc = {
        "grid": "g",
        "alpha": 0.1,
        "seed": 0,
        "lrs": [1e-4, 1e-3],
        "objective": "last two",
        "notes": ["bbc_news/lora-0.5: no trial could run; keeps fl.lr = 0.0001"],
        "chosen": {"bbc_news": {"full": 1e-4, "head": 1e-3}},
        **extra,
    }
    path.write_text(yaml.safe_dump(doc))
    rows = [
        ("full", 1e-4, "complete", 0.91, "2;4", "0.8;0.9", 300.0),
        ("full", 1e-3, "pruned", float("nan"), "2", "0.3", 60.0),
        ("head", 1e-4, "complete", 0.55, "2;4", "0.5;0.6", 100.0),
        ("head", 1e-3, "complete", 0.70, "2;4", "0.6;0.8", 140.0),
    ]
    cols = ["method", "lr", "state", "value", "rounds", "val_accuracy", "wall_s"]
    t = pd.DataFrame(rows, columns=cols).assign(dataset="bbc_news")
    t.to_csv(path.with_name("g_trials.csv"), index=False)
    return path


def test_the_section_shows_each_choice_its_objectives_curves_and_share(tmp_path):
    record = _record(tmp_path)
    text = "\n".join(tuning_section(record, grid_wall_s=2400.0))
    assert "| bbc_news | all | full | 0.0001 | - | 0.0001: 91.0, 0.001: pruned on 1 of 1 seeds |" in text
    assert "| bbc_news | all | head | 0.001 | - | 0.0001: 55.0, 0.001: 70.0 |" in text
    assert "alpha 0.1, seed 0 (one lr per dataset and method, for every partition)" in text
    assert "tied lrs." not in text  # one seed: no ties to count
    assert "= 25 % of this grid's" in text  # 600 s of trials / 2400 s of cells
    assert "no trial could run" in text
    assert "(tuning/tuning_bbc_news.png)" in text
    drawn = draw_tuning(record, tmp_path / "out")
    assert [p.name for p in drawn] == ["tuning_bbc_news.png", "tuning_bbc_news.pdf"]
    assert all(p.parent == tmp_path / "out" / "tuning" and p.stat().st_size > 0 for p in drawn)


def test_without_a_record_the_section_says_why(tmp_path):
    assert "every method uses `fl.lr`" in "\n".join(tuning_section(None, 1.0))
    missing = "\n".join(tuning_section(tmp_path / "nope.yaml", 1.0))
    assert "is missing: run `make tune` first" in missing
    assert draw_tuning(None, tmp_path) == draw_tuning(tmp_path / "nope.yaml", tmp_path) == []


def test_a_choice_on_an_edge_the_rule_would_still_extend_is_flagged(tmp_path):
    """Both choices sit on an edge (full on the lowest lr, head on the highest): with ``max_extend`` 1 the
    tuner would try 3e-05 and 0.003 next, so the report says the tuning is unfinished; without it, not."""
    text = "\n".join(tuning_section(_record(tmp_path, max_extend=1), 1.0))
    assert "bbc_news/full: tuning unfinished" in text and "(3e-05) was never tried" in text
    assert "bbc_news/head: tuning unfinished" in text and "(0.003) was never tried" in text
    fresh = tmp_path / "again"
    fresh.mkdir()
    spent = "\n".join(tuning_section(_record(fresh), 1.0))  # max_extend 0: no step left, but still an edge
    assert "unfinished" not in spent
    assert "bbc_news/full: chosen on the edge.** Its best or chosen lr is the smallest lr tried" in spent
    assert "bbc_news/head: chosen on the edge.** Its best or chosen lr is the largest lr tried" in spent


def _record_v2(tmp_path):
    path = tmp_path / "tuned" / "g.yaml"
    path.parent.mkdir()
    doc = {
        "grid": "g",
        "format": 2,
        "tie_rule": "within one SE of the winner, the smallest lr",
        "seeds": [0, 1],
        "lrs": [1e-4, 1e-3],
        "max_extend": 0,
        "objective": "last two",
        "ties": {"bbc_news": {"natural:src": {"full": [1e-4, 1e-3]}}},
        "chosen": {"bbc_news": {"1.0": {"full": 1e-3}, "natural:src": {"full": 1e-4}}},
    }
    path.write_text(yaml.safe_dump(doc))
    rows = [
        ("1.0", 0, 1e-4, "complete", 0.60),
        ("1.0", 1, 1e-4, "complete", 0.62),
        ("1.0", 0, 1e-3, "complete", 0.80),
        ("1.0", 1, 1e-3, "complete", 0.84),
        ("natural:src", 0, 1e-4, "complete", 0.70),
        ("natural:src", 1, 1e-4, "complete", 0.74),
        ("natural:src", 0, 1e-3, "complete", 0.72),
        ("natural:src", 1, 1e-3, "complete", 0.70),
    ]
    t = pd.DataFrame(rows, columns=["alpha", "seed", "lr", "state", "value"])
    t = t.assign(dataset="bbc_news", method="full", rounds="2;4", val_accuracy="0.5;0.6", wall_s=100.0)
    t.to_csv(path.with_name("g_trials.csv"), index=False)
    return path


def test_the_per_partition_record_shows_means_ses_ties_and_a_figure_per_partition(tmp_path):
    record = _record_v2(tmp_path)
    text = "\n".join(tuning_section(record, grid_wall_s=8000.0))
    assert "| bbc_news | 1.0 | full | 0.001 | - | 0.0001: 61.0 ± 1.0, 0.001: 82.0 ± 2.0 |" in text
    assert (
        "| bbc_news | natural:src | full | 0.0001 | 0.0001, 0.001 | 0.0001: 72.0 ± 2.0, 0.001: 71.0 ± 1.0 |"
    ) in text
    assert "1 of 2 choices have tied lrs" in text and "**Tie rule:** within one SE" in text
    assert "seeds 0, 1" in text and "= 10 % of this grid's" in text  # 800 s of trials / 8000 s
    drawn = draw_tuning(record, tmp_path / "out")
    for stem in ("tuning_bbc_news_1.0", "tuning_bbc_news_natural-src"):
        assert f"![{stem}](tuning/{stem}.png)" in text
        assert (tmp_path / "out" / "tuning" / f"{stem}.png") in drawn
    assert "unfinished" not in text


def test_tuning_figures_are_a_panel_of_the_report_and_on_the_contact_sheet(
    fixture_results, tmp_path, monkeypatch
):
    """Drawn by the registry's ``tuning`` panel through ``save``, listed under its title in the
    README's figures, and a thumbnail of ``figures/index.png``."""
    from fl_core.report import gallery
    from fl_core.report.build import write_report

    sheets = []
    real = gallery.contact_sheet
    monkeypatch.setattr(gallery, "contact_sheet", lambda pngs, out: sheets.append(pngs) or real(pngs, out))
    res = fixture_results.filter(label=["full", "head"], alpha="0.1")
    record = _record(tmp_path)
    readme, parts = write_report(res, tmp_path / "out", title="t", header=[], tuned=record)
    png = tmp_path / "out" / "tuning" / "tuning_bbc_news.png"
    assert parts["figures"]["tuning"] == [png, png.with_suffix(".pdf")]
    assert png in sheets[0] and (tmp_path / "out" / "figures" / "index.png").is_file()
    text = readme.read_text()
    assert f"### {gallery.PANELS['tuning'].title}" in text
    # the figure list links to the learning-rate section, which shows each figure once
    assert (
        "In [Learning rates (tuned on the validation split)](#learning-rates-tuned-on-the-validation-split)"
        in text
    )
    assert "(tuning/tuning_bbc_news.png)" not in text  # not copied into the list: the section shows it
    from fl_core.report.tuning import tuning_section

    assert "![tuning_bbc_news](tuning/tuning_bbc_news.png)" in tuning_section(record, 1.0)


def test_the_section_says_whether_published_seeds_were_tuned_on(tmp_path):
    """A grid seed that is also a tuning seed reruns the chosen lr's tuning trial: the report says so."""
    record = _record(tmp_path, seeds=[0, 1])
    overlap = "\n".join(tuning_section(record, 1.0, grid_seeds=[0, 1, 2]))
    assert "Tuning seeds 0, 1; grid seeds 0, 1, 2: at seed 0, 1, a cell" in overlap
    disjoint = "\n".join(tuning_section(record, 1.0, grid_seeds=[2, 3, 4]))
    assert "Tuning seeds 0, 1; grid seeds 2, 3, 4: disjoint" in disjoint
    assert "grid seeds" not in "\n".join(tuning_section(record, 1.0))
