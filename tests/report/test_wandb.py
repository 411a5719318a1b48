"""W&B logging of a report: tables + images to one run in the sweep's group; best-effort."""

from __future__ import annotations

import logging
import sys
import types

import pandas as pd

from fl_core.config import WandbConfig
from fl_core.report.wandb_log import log_report


class _Run:
    def __init__(self, log):
        self.logged, self.summary, self.finished = log, {}, False

    def log(self, payload):
        self.logged.update(payload)

    def finish(self, exit_code=0):
        self.finished = True


def _fake_wandb(calls, fail=False):
    m = types.ModuleType("wandb")

    def init(**kw):
        if fail:
            raise RuntimeError("no network")
        calls["init"] = kw
        calls["run"] = _Run(calls.setdefault("log", {}))
        return calls["run"]

    m.init = init
    m.Settings = lambda **kw: kw
    m.Table = lambda dataframe: ("table", dataframe.shape)
    m.Image = lambda path: ("image", path)
    return m


def test_report_goes_to_one_run_in_the_sweep_group(tmp_path, monkeypatch):
    calls = {}
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(calls))
    png = tmp_path / "acc_vs_round_x.png"
    png.write_bytes(b"png")
    ok = log_report(
        WandbConfig(mode="offline"),
        "default",
        tmp_path,
        {"accuracy": pd.DataFrame({"a": [1.0, None]})},
        [png, tmp_path / "acc_vs_round_x.pdf"],
        {"cells": 4},
    )
    assert ok and calls["init"]["group"] == "default" and calls["init"]["job_type"] == "report"
    assert calls["log"] == {"table/accuracy": ("table", (2, 1)), "figure/acc_vs_round_x": ("image", str(png))}
    assert calls["run"].summary == {"cells": 4} and calls["run"].finished


def test_mode_off_skips(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)
    assert log_report(WandbConfig(mode="off"), "g", tmp_path, {}, []) is False


def test_a_wandb_failure_is_a_warning_not_an_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb({}, fail=True))
    with caplog.at_level(logging.WARNING):
        assert log_report(WandbConfig(mode="offline"), "g", tmp_path, {}, []) is False
    assert "W&B report logging failed (no network)" in caplog.text
