"""Picture tests: every figure of the report, rendered from the generated fixture store (a
reference-size grid), is checked the way a reader would look at it, using matplotlib's own text
bounding boxes: no tick labels overprint, each method has its own colour, every row of panels shares
one scale; the palette stays apart for deuteranopic vision; the contact sheet exists."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from fl_core.report import style as S
from fl_core.report.fig_updates import applied_share
from fl_core.report.load import load_results

#: least CIE76 ΔE between any two family shades (first three per family: 15 methods)
MIN_DE_NORMAL, MIN_DE_DEUTAN = 15.0, 10.0


def _tick_boxes(fig):
    """(axes index, text, window bbox) of every drawn tick label in ``fig``."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                lab = tick.label1
                if lab.get_visible() and lab.get_text() and lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    out.append((i, lab.get_text(), lab.get_window_extent(r)))
    return out


def test_every_figure_was_inspected(picture_report):
    out, _, parts, figs = picture_report
    pngs = {p.stem for ps in parts["figures"].values() for p in ps if p.suffix == ".png"}
    assert pngs == set(figs) and len(pngs) >= 9
    assert {"acc_vs_round_bbc_news", "blocks_bbc_news_a0.1", "depth_bbc_news", "budget_bbc_news"} <= pngs


def test_no_tick_labels_overlap(picture_report):
    for stem, fig in picture_report[3].items():
        if stem.startswith("cd_"):
            continue  # autorank's CD diagram: axes off, the ranks are text
        boxes = _tick_boxes(fig)
        assert boxes, stem
        for (i, a, ba), (j, b, bb) in itertools.combinations(boxes, 2):
            assert not ba.overlaps(bb), f"{stem}: tick labels {a!r} (axes {i}) and {b!r} (axes {j}) overlap"


def test_the_overlap_check_catches_crowded_labels():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.set_xticks(range(30), [f"label {i}" for i in range(30)])
    boxes = _tick_boxes(fig)
    assert any(a[2].overlaps(b[2]) for a, b in itertools.combinations(boxes, 2))


def _handle_color(h) -> str | None:
    if isinstance(h, ErrorbarContainer):
        h = h.lines[0]
    if isinstance(h, Line2D):
        return to_hex(h.get_color()) if h.get_linestyle() != "None" or h.get_marker() else None
    if isinstance(h, Rectangle):
        return to_hex(h.get_facecolor())
    if isinstance(h, LineCollection):  # an errorbar's legend handle: its bars
        return to_hex(h.get_color()[0])
    if isinstance(h, PathCollection):
        return to_hex(h.get_facecolor()[0])
    return None


def _legend_colors(fig) -> dict[str, str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    out: dict[str, str] = {}
    for leg in legends:
        for h, t in zip(leg.legend_handles, leg.get_texts(), strict=True):
            c = _handle_color(h)
            if c is not None:
                assert out.setdefault(t.get_text(), c) == c, f"{t.get_text()} drawn in two colours"
    return out


def test_each_method_has_its_own_colour_within_a_figure(picture_report):
    checked = 0
    for stem, fig in picture_report[3].items():
        colors = _legend_colors(fig)
        if len(colors) < 2:
            continue
        by_color: dict[str, list[str]] = {}
        for lab, c in colors.items():
            by_color.setdefault(c, []).append(lab)
        assert all(len(v) == 1 for v in by_color.values()), f"{stem}: shared colours {by_color}"
        checked += 1
    assert checked >= 3  # accuracy curves, both Pareto plots (and depth / budget)


def _row_of(ax) -> int | None:
    ss = ax.get_subplotspec()
    return None if ss is None else ss.rowspan.start


def test_every_row_of_panels_has_one_scale(picture_report):
    for stem, fig in picture_report[3].items():
        if stem == "index":
            continue
        rows: dict[int, set] = {}
        for ax in fig.axes:
            row = _row_of(ax)
            if row is None or not ax.get_visible():
                continue  # colour bars, hidden spare panels
            imgs = [im for im in ax.get_images() if isinstance(im, AxesImage)]
            if stem.startswith("partition"):
                key = ("image", ax.get_yscale())  # counts: one colour scale per seed's own matrix
            elif imgs:
                key = ("image", tuple(np.round(imgs[0].get_clim(), 9)))
            else:
                key = (ax.get_xscale(), ax.get_yscale(), tuple(np.round(ax.get_ylim(), 9)))
                if stem.startswith("pareto"):
                    key += (tuple(np.round(ax.get_xlim(), 3)),)
            rows.setdefault(row, set()).add(key)
        for row, keys in rows.items():
            assert len(keys) == 1, f"{stem}, row {row}: {keys}"


def test_pareto_costs_spanning_more_than_10x_are_log_scaled(picture_report):
    figs = picture_report[3]
    assert all(ax.get_xscale() == "log" for ax in figs["pareto_bytes_up_bbc_news"].axes)  # 2.6 MB .. 0.7 GB
    assert all(ax.get_xscale() == "linear" for ax in figs["pareto_flops_bbc_news"].axes)  # < 10x


def test_family_palette_is_distinct_for_normal_and_deuteranopic_vision():
    colors = [c for shades in S.FAMILY_COLORS.values() for c in shades[:3]]
    assert len(set(colors)) == len(colors) == 15
    for simulate, least in ((False, MIN_DE_NORMAL), (True, MIN_DE_DEUTAN)):
        d = S.delta_e(colors, simulate=simulate)
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        assert d[i, j] >= least, f"{colors[i]} vs {colors[j]}: ΔE {d[i, j]:.1f} (deuteranopia: {simulate})"


def test_deuteranopia_simulation_merges_red_and_green():
    """The check can fail: pure red and green, far apart normally, nearly merge for a deuteranope."""
    normal, deutan = S.delta_e(["#d62728", "#2ca02c"]), S.delta_e(["#d62728", "#2ca02c"], simulate=True)
    assert normal[0, 1] > 60 and deutan[0, 1] < normal[0, 1] / 3
    np.testing.assert_allclose(S.deuteranopia(["#808080"]), S.deuteranopia(["#808080"]))
    np.testing.assert_allclose(S.lab(np.ones((1, 3))), [[100.0, 0.0, 0.0]], atol=1e-3)


def test_style_map_colours_follow_families_and_never_repeat():
    labels = [f"m{i}" for i in range(20)]
    fams = {lab: S.FAMILIES[i % 5] for i, lab in enumerate(labels)}
    sm = S.StyleMap(labels, fams)
    assert len({sm[lab].color for lab in labels}) == 20
    assert sm["m1"].color == S.FAMILY_COLORS["fedtlu"][0] and sm["m6"].color == S.FAMILY_COLORS["fedtlu"][1]
    assert len({S.StyleMap(labels)[lab].color for lab in labels}) == 20  # no families: still distinct


def test_server_applied_blocks_differ_between_fedtlu_and_random_server(picture_store):
    res = load_results(picture_store)
    rounds = np.arange(4)
    tlu = applied_share(res, "fedtlu", "bbc_news", "0.1", rounds, 6)
    rnd = applied_share(res, "random-3-server", "bbc_news", "0.1", rounds, 6)
    assert tlu is not None and rnd is not None and not np.allclose(tlu, rnd)
    np.testing.assert_allclose(tlu.sum(0), 3.0)  # k = 3 blocks applied per round, every seed
    assert applied_share(res, "full", "bbc_news", "0.1", rounds, 6) is None


def test_round_zero_is_drawn_where_evaluated(picture_report):
    ax = picture_report[3]["acc_vs_round_bbc_news"].axes[0]
    xs = {x for line in ax.get_lines() for x in line.get_xdata()}
    assert 0 in xs and 1 in xs


@pytest.mark.parametrize("stem", ["blocks_bbc_news_a0.1"])
def test_fibecfed_split_and_data_share_are_labelled(picture_report, stem):
    fig = picture_report[3][stem]
    ax = next(a for a in fig.axes if a.get_title() == "fibecfed")
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1] == "data used" and "block 5 · PL" in names and "block 0 · GAL" in names
    assert [t.get_text() for t in ax.texts][0] == "60%"


def test_contact_sheet_is_written(picture_report):
    out = picture_report[0] / "figures" / "index.png"
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_golden_tables_from_the_generated_store(picture_store, make_store_module, tmp_path):
    """The new store fields (families, applied blocks, round-0 rows) leave the golden tables unchanged."""
    m = make_store_module
    golden = m.GOLDEN
    store = m.make_store(tmp_path / "store")  # METHODS only, as the committed store
    m.write_golden(store, tmp_path / "golden")
    for p in sorted(golden.rglob("*")):
        if p.is_file():
            assert (tmp_path / "golden" / p.relative_to(golden)).read_bytes() == p.read_bytes(), p.name
