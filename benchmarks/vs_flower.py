"""Versus Flower: one FedAvg workload on Flower's simulation engine and on ours (`make perf-flower`).

The workload is the same for both engines: MiniLM-L6 (packaged pretrained weights), BBC News, an IID
partition of the whole train split over N clients (N = 10, 100, 1000: fixed total data, so per-client
overhead shows), 10 clients per round on our pre-sampled schedule, 2 rounds, 1 local step of batch 16 at
max_len 32 per client (our ``local_batches`` for (round, client)), method ``full`` (every block + head,
embeddings frozen), AdamW lr 5e-4 with grad clip 1.0, FedAvg weighted by sample count, no evaluation.

- ours: ``run_round`` on a context from ``build_context``.
- Flower (``flwr[simulation]``, Ray backend): a ``ServerApp`` running ``FedAvg`` and a ``ClientApp``
  that loads the global arrays into its model, trains them on the same batches and returns them, as
  Flower's PyTorch quickstart does (``ArrayRecord`` <-> torch state dict through NumPy). Flower's
  sampler picks the 10 nodes of a round; the strategy tells each one which of our scheduled clients
  it trains (a virtual node is only a slot in the simulation), so both engines run the same client
  updates and must end at the same weights: ``update_rel_diff`` checks that.

Each (engine, N) run is a fresh process, the two engines interleaved. Timed: the rounds only (the
one-time setup, model and data loading, Ray start, actor warm-up, is reported separately), plus the
whole process. Peak memory: PSS summed over the run's process tree (Ray's processes included).

Runs in its own venv (`.venv-flower`): flwr pins ray and packaging versions that clash with `.venv`.
Writes results/perf/perf_flower.csv and the `## flower` section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness import out_dir, publish, run_config  # benchmarks/ is the script's dir

from fl_core.client import local_batches, train_steps
from fl_core.config import RunConfig
from fl_core.context import RunContext
from fl_core.methods import Method, make_method
from fl_core.simulator import build_context, participation_schedule, run_round

SIZES = (10, 100, 1000)
QUIET = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore",
}  # set for the runs (no network)
PER_ROUND = 10
ROUNDS = 2


# -- the workload, built the same way by our engine, Flower's server and each Flower actor ----------
def workload_config(
    num_clients: int,
    rounds: int = ROUNDS,
    per_round: int = PER_ROUND,
    model: str = "minilm-l6",
    max_train_samples: int | None = None,
    max_len: int = 32,
) -> RunConfig:
    return run_config(
        model=model,
        data={"min_partition_size": 1, "max_train_samples": max_train_samples},
        num_clients=num_clients,
        clients_per_round=per_round,
        rounds=rounds,
        local_steps=1,
        max_len=max_len,
        lr=5e-4,
        optimizer="adamw",
        device="cpu",
    )


@dataclass
class Workload:
    ctx: RunContext
    method: Method
    schedule: list[list[int]]  # clients of each round (our participation schedule)
    names: list[str]  # what `full` trains: every block + head, embeddings frozen

    @classmethod
    def build(cls, cfg: RunConfig) -> Workload:
        torch.manual_seed(cfg.seed)
        ctx = build_context(cfg)
        method = make_method(cfg.method.name, cfg.method.params, ctx)
        method.setup()
        names = ctx.trainable_names(method.configure_train(0, [0])[0])
        return cls(ctx, method, participation_schedule(ctx), names)

    def batches(self, rnd: int, cid: int) -> list[np.ndarray]:
        return local_batches(self.ctx, self.method, rnd, cid)

    def num_samples(self, cid: int) -> int:
        return self.ctx.num_samples(cid)

    # what a Flower client does with the model: set / train / get
    def get_parameters(self) -> dict[str, torch.Tensor]:
        return {n: self.ctx.model.params[n].detach() for n in self.names}

    def set_parameters(self, values: dict[str, torch.Tensor]) -> None:
        self.ctx.model.load(values)

    def train(self, rnd: int, cid: int) -> float:
        """Client ``cid``'s local training in round ``rnd``: the steps, seeds and batches of ``run_client``."""
        torch.manual_seed(self.ctx.torch_seed(rnd, cid))
        plan = self.method.configure_train(rnd, [cid])[cid]
        loss, _ = train_steps(self.ctx, self.method, cid, plan, self.batches(rnd, cid), self.names)
        return loss

    # our engine
    def ours_round(self, rnd: int) -> None:
        run_round(self.ctx, self.method, rnd, self.schedule[rnd], [])


_WORKLOADS: dict[str, Workload] = {}  # per process: Flower's driver and each Ray actor keep theirs


def cached_workload(spec: str) -> Workload:
    if spec not in _WORKLOADS:
        _WORKLOADS[spec] = Workload.build(workload_config(**json.loads(spec)))
    return _WORKLOADS[spec]


# -- Flower's side -----------------------------------------------------------------------------------
def flower_train(msg, context):
    """ClientApp ``train``: global arrays in, the same local steps as ours, trained arrays out."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    cfg = msg.content["config"]
    w = cached_workload(str(cfg["workload"]))
    rnd, cid = int(cfg["server-round"]) - 1, int(cfg["cid"])
    w.set_parameters(msg.content["arrays"].to_torch_state_dict())
    loss = w.train(rnd, cid)
    reply = RecordDict(
        {
            "arrays": ArrayRecord(w.get_parameters()),
            "metrics": MetricRecord({"train_loss": loss, "num-examples": w.num_samples(cid)}),
        }
    )
    return Message(content=reply, reply_to=msg)


def flower_warmup(msg, context):
    """ClientApp ``query``: load model and data into this actor (one-time setup, outside the timing)."""
    from flwr.app import Message, MetricRecord, RecordDict

    cached_workload(str(msg.content["config"]["workload"]))
    return Message(
        content=RecordDict(
            {"metrics": MetricRecord({"pid": os.getpid(), "threads": torch.get_num_threads()})}
        ),
        reply_to=msg,
    )


def make_client_app():
    from flwr.clientapp import ClientApp

    app = ClientApp()
    app.train()(flower_train)
    app.query()(flower_warmup)
    return app


def scheduled_fedavg(schedule: list[list[int]], num_nodes: int, per_round: int):
    """Flower's ``FedAvg``, sampling ``per_round`` of ``num_nodes`` nodes with its own sampler; each
    sampled node is told which client of our schedule it trains this round."""
    from flwr.app import ConfigRecord, Message, MessageType, RecordDict
    from flwr.serverapp.strategy import FedAvg

    class ScheduledFedAvg(FedAvg):
        def configure_train(self, server_round, arrays, config, grid):
            sampled = list(super().configure_train(server_round, arrays, config, grid))
            out = []
            for msg, cid in zip(sampled, schedule[server_round - 1], strict=True):
                content = RecordDict(
                    {
                        self.arrayrecord_key: arrays,
                        self.configrecord_key: ConfigRecord({**config, "cid": cid}),
                    }
                )
                out.append(
                    Message(
                        content=content, dst_node_id=msg.metadata.dst_node_id, message_type=MessageType.TRAIN
                    )
                )
            return out

    return ScheduledFedAvg(
        fraction_train=per_round / num_nodes,
        fraction_evaluate=0.0,
        min_train_nodes=per_round,
        min_available_nodes=num_nodes,
    )


_SERVER: dict[str, Any] = {}  # the ServerApp's input and output (it runs in a thread of this process)


def flower_server_main(grid, context) -> None:
    from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict

    spec, n = _SERVER["spec"], json.loads(_SERVER["spec"])
    w = cached_workload(spec)  # the server's initial model and our schedule
    # warm-up: enough query messages that every actor loads model and data before the timed rounds
    while len(nodes := list(grid.get_node_ids())) < n["num_clients"]:  # the nodes register concurrently
        time.sleep(0.1)
    nodes = nodes[: 2 * _SERVER["actors"]]
    warm = [
        Message(
            content=RecordDict({"config": ConfigRecord({"workload": spec})}),
            dst_node_id=nid,
            message_type=MessageType.QUERY,
        )
        for nid in nodes
    ]
    replies = list(grid.send_and_receive(warm))
    errors = [r.error.reason for r in replies if r.has_error()]
    if errors:
        raise RuntimeError(f"warm-up failed: {errors[0]}")
    _SERVER["actor_pids"] = sorted({int(r.content["metrics"]["pid"]) for r in replies})
    _SERVER["actor_threads"] = sorted({int(r.content["metrics"]["threads"]) for r in replies})
    strategy = scheduled_fedavg(w.schedule, n["num_clients"], w.ctx.cfg.fl.clients_per_round)
    _SERVER["t_rounds"] = time.perf_counter()
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(w.get_parameters()),
        num_rounds=n["rounds"],
        train_config=ConfigRecord({"workload": spec}),
    )
    _SERVER["t_done"] = time.perf_counter()
    _SERVER["final"] = {k: v.numpy() for k, v in result.arrays.items()}
    _SERVER["rounds_trained"] = len(result.train_metrics_clientapp)


def make_server_app():
    from flwr.serverapp import ServerApp

    app = ServerApp()
    app.main()(flower_server_main)
    return app


# -- one run per process -----------------------------------------------------------------------------
def _spec(args) -> str:
    return json.dumps({"num_clients": args.clients, "rounds": args.rounds}, sort_keys=True)


def child_ours(args) -> dict[str, Any]:
    t0 = time.perf_counter()
    w = Workload.build(workload_config(args.clients, args.rounds))
    initial = {n: v.numpy().copy() for n, v in w.get_parameters().items()}
    t1 = time.perf_counter()
    for rnd in range(args.rounds):
        w.ours_round(rnd)
    t2 = time.perf_counter()
    np.savez(
        args.save,
        **{f"initial/{n}": v for n, v in initial.items()},
        **{f"final/{n}": v.numpy() for n, v in w.get_parameters().items()},
    )
    return {"setup_s": t1 - t0, "rounds_s": t2 - t1, "threads": torch.get_num_threads()}


def child_flower(args) -> dict[str, Any]:
    import logging

    import flwr
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.ERROR)  # Flower logs every round at INFO by default
    backend = {
        "client_resources": {"num_cpus": args.client_cpus, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": os.cpu_count(),
            "num_gpus": 0,
            "logging_level": "ERROR",
            "log_to_driver": False,
            "include_dashboard": False,
        },
    }
    _SERVER.update(spec=_spec(args), actors=max(1, int(os.cpu_count() // args.client_cpus)))
    t0 = time.perf_counter()
    run_simulation(
        server_app=make_server_app(),
        client_app=make_client_app(),
        num_supernodes=args.clients,
        backend_name="ray",
        backend_config=backend,
    )
    t3 = time.perf_counter()
    if "final" not in _SERVER:
        raise RuntimeError("the ServerApp did not finish (see stderr)")
    np.savez(args.save, **{f"final/{n}": v for n, v in _SERVER["final"].items()})
    return {
        "setup_s": _SERVER["t_rounds"] - t0,
        "rounds_s": _SERVER["t_done"] - _SERVER["t_rounds"],
        "teardown_s": t3 - _SERVER["t_done"],
        "actors": len(_SERVER["actor_pids"]),
        "threads": _SERVER["actor_threads"],
        "rounds_trained": _SERVER["rounds_trained"],
        "flwr": flwr.__version__,
        "ray": __import__("ray").__version__,
    }


# -- the parent: interleaved runs, memory sampling, tables ---------------------------------------------
def _tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _pss_mb(pids: list[int]) -> float:
    kb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                kb += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
        except OSError:
            pass
    return kb / 1024


def run_child(
    engine: str, clients: int, rounds: int, save: Path, client_cpus: float = 1.0, timeout: float = 900
) -> dict[str, Any]:
    """One run in a fresh process (its own session, cleaned up afterwards); peak PSS of its tree."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--clients",
        str(clients),
        "--rounds",
        str(rounds),
        "--client-cpus",
        str(client_cpus),
        "--save",
        str(save),
    ]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _pss_mb(_tree(proc.pid)))
            if time.perf_counter() - t0 > timeout:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what the run left behind (Ray)
            os.killpg(proc.pid, signal.SIGKILL)
        out.seek(0), err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
        row: dict[str, Any] = {
            "engine": engine,
            "clients": clients,
            "client_cpus": client_cpus,
            "total_s": wall,
            "peak_pss_MB": peak,
        }
        if proc.returncode == 0 and lines:
            row.update(json.loads(lines[-1]))
        else:
            tail = [ln for ln in err.read().splitlines() if ln.strip()][-3:]
            row["error"] = (
                f"exit {proc.returncode}" + (" (timeout)" if wall > timeout else "") + ": " + " | ".join(tail)
            )[:300]
    return row


def update_rel_diff(ours: Path, flower: Path) -> float:
    """||Δ_flower - Δ_ours|| / ||Δ_ours|| over every trained parameter (Δ: final - initial)."""
    a, b = np.load(ours, allow_pickle=False), np.load(flower, allow_pickle=False)
    num = den = 0.0
    for key in a.files:
        if key.startswith("final/"):
            d_ours = a[key].astype(np.float64) - a["initial/" + key[6:]]
            d_flower = b[key].astype(np.float64) - a["initial/" + key[6:]]
            num += float(((d_flower - d_ours) ** 2).sum())
            den += float((d_ours**2).sum())
    return (num / den) ** 0.5


def markdown_table(df) -> str:
    """A GitHub table (``df.to_markdown`` needs tabulate, which .venv-flower does not install)."""
    cells = [[str(c) for c in df.columns]] + [[str(v) for v in row] for row in df.itertuples(index=False)]
    return "\n".join(
        ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in cells[0]) + "|"]
        + ["| " + " | ".join(r) + " |" for r in cells[1:]]
    )


def _med(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of clients, comma-separated")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--reps", type=int, default=2, help="runs per engine and size (fresh process each)")
    ap.add_argument(
        "--client-cpus",
        default="auto",
        help="Flower client resources (CPUs per ClientApp actor); auto: try 1 and 2 in the "
        "first runs (smallest size), keep the faster",
    )
    ap.add_argument("--timeout", type=float, default=420, help="seconds per run before it is killed")
    ap.add_argument("--child", choices=["ours", "flower"], help=argparse.SUPPRESS)
    ap.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for k, v in QUIET.items():
        os.environ.setdefault(k, v)
    if args.child:
        if args.child == "flower":
            args.client_cpus = float(args.client_cpus)
        res = (child_ours if args.child == "ours" else child_flower)(args)
        print(json.dumps(res), flush=True)
        return

    import pandas as pd
    from flwr import __version__ as flwr_version  # fails early if run outside .venv-flower

    from fl_core.provenance import git_revision

    sizes = [int(s) for s in args.sizes.split(",")]
    cpu_options = [1.0, 2.0] if args.client_cpus == "auto" else [float(args.client_cpus)]
    tmp = Path(tempfile.mkdtemp(prefix="vs_flower_"))
    t_start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    chosen: float | None = None if len(cpu_options) > 1 else cpu_options[0]
    calibration: dict[float, float | None] = {}
    for n in sizes:
        for rep in range(args.reps):
            order = [("ours", 1.0)] + [("flower", c) for c in (cpu_options if chosen is None else [chosen])]
            if rep % 2:
                order.reverse()
            for engine, cpus in order:
                save = tmp / f"{engine}-{n}-{cpus:g}-{rep}.npz"
                row = run_child(engine, n, args.rounds, save, cpus, args.timeout)
                row.update(rep=rep, save=str(save))
                runs.append(row)
                brief = {
                    k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items() if k != "save"
                }
                print(json.dumps(brief), flush=True)
            if chosen is None:  # client resources: the faster on the first runs (smallest size)
                calibration = {
                    c: _med(
                        [r for r in runs if r["engine"] == "flower" and r["client_cpus"] == c], "rounds_s"
                    )
                    for c in cpu_options
                }
                ok = {c: t for c, t in calibration.items() if t is not None}
                chosen = min(ok, key=ok.get) if ok else cpu_options[0]

    rows = []
    for n in sizes:
        ours = [r for r in runs if r["engine"] == "ours" and r["clients"] == n]
        flower = [
            r for r in runs if r["engine"] == "flower" and r["clients"] == n and r["client_cpus"] == chosen
        ]
        o, f = _med(ours, "rounds_s"), _med(flower, "rounds_s")
        diffs = [
            update_rel_diff(Path(a["save"]), Path(b["save"]))
            for a in ours
            for b in flower
            if a["rep"] == b["rep"] and "error" not in a and "error" not in b
        ]
        errors = "; ".join(f"{r['engine']}: {r['error']}" for r in ours + flower if "error" in r)
        ft = [r for r in flower if "error" not in r]
        rows.append(
            {
                "clients": n,
                "clients_per_round": PER_ROUND,
                "rounds": args.rounds,
                "reps": len(ours),
                "ours_s": o,
                "flower_s": f,
                "ratio": (f / o) if o and f else None,
                "ours_setup_s": _med(ours, "setup_s"),
                "flower_setup_s": _med(flower, "setup_s"),
                "ours_total_s": _med(ours, "total_s"),
                "flower_total_s": _med(flower, "total_s"),
                "total_ratio": (_med(flower, "total_s") / _med(ours, "total_s")) if o and f else None,
                "ours_peak_MB": _med(ours, "peak_pss_MB"),
                "flower_peak_MB": _med(flower, "peak_pss_MB"),
                "flower_client_cpus": chosen,
                "flower_actors": ft[0]["actors"] if ft else None,
                "update_rel_diff": max(diffs) if diffs else None,
                "note": errors or "ok",
            }
        )
    df = pd.DataFrame(rows)
    for c in df.columns:
        if df[c].dtype == float and c != "update_rel_diff":
            df[c] = df[c].round(3 if c.endswith("ratio") else 2)
    df["update_rel_diff"] = df["update_rel_diff"].map(
        lambda v: f"{v:.1e}" if isinstance(v, float) and v == v else "n/a"
    )
    for c in ("ours_peak_MB", "flower_peak_MB"):
        df[c] = df[c].map(lambda v: round(v) if isinstance(v, float) else v)
    df = df.fillna("n/a")
    df.to_csv(out_dir() / "perf_flower.csv", index=False)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()

    elapsed = time.perf_counter() - t_start
    ours_threads = next((r["threads"] for r in runs if r["engine"] == "ours" and "threads" in r), "?")
    flower_info = next(
        (r for r in runs if r["engine"] == "flower" and "error" not in r and r["client_cpus"] == chosen), {}
    )
    cal = ", ".join(
        f"{c:g} CPU: {t:.2f} s" if t is not None else f"{c:g} CPU: failed" for c, t in calibration.items()
    )
    bullets = [
        f"- `make perf-flower` on {os.cpu_count()} CPUs, torch {torch.__version__}, flwr {flwr_version} "
        f"(ray {flower_info.get('ray', '?')}), git `{git_revision()}`, {time.strftime('%Y-%m-%d %H:%M')}",
        f"- workload (both engines): MiniLM-L6 pretrained, BBC News, IID over N clients (whole train split), "
        f"{PER_ROUND} clients per round on our schedule, {args.rounds} rounds, 1 local step (batch 16, max_len 32), "
        "`full` (blocks + head, embeddings frozen), AdamW 5e-4, sample-weighted FedAvg, no evaluation",
        f"- `ours_s` / `flower_s`: wall time of the {args.rounds} rounds (median of `reps` fresh processes, the "
        "engines interleaved); **ratio = flower_s / ours_s: above 1 means ours is faster**. `*_setup_s`: "
        "one-time model/data loading (Flower: also Ray start and actor warm-up); `*_total_s`: the whole process",
        f"- Flower: `run_simulation`, Ray backend, `init_args.num_cpus={os.cpu_count()}`, client resources "
        f"{chosen:g} CPU ({flower_info.get('actors', '?')} actor(s), torch threads {flower_info.get('threads', '?')})"
        + (f"; picked at N={sizes[0]} by rounds time ({cal})" if cal else "")
        + f"; ours: one process, torch threads {ours_threads}",
        "- Flower's sampler picks the nodes; each is told which client of our schedule it trains, so both "
        "engines run the same client updates: `update_rel_diff` = ||Δ_flower − Δ_ours|| / ||Δ_ours|| of the "
        "final weights (float rounding, different thread counts)",
        "- `*_peak_MB`: peak PSS summed over the run's process tree (Ray's processes and actors included), "
        "sampled every 0.5 s",
    ]
    table = markdown_table(df.drop(columns=["clients_per_round", "rounds", "flower_client_cpus"]))
    publish("flower", "\n".join(bullets), table, seconds=elapsed)
    print(df.to_string(index=False), flush=True)


if __name__ == "__main__":
    # run under its module name, so Ray actors unpickle the ClientApp's functions by reference and
    # each actor keeps its model between messages (the module-level cache)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import vs_flower

    vs_flower.main()
