"""benchmarks/vs_flower.py gives both engines the same work (behaviour only, no timing)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fl_core.models import EMB, HEAD
from fl_core.simulator import participation_schedule

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_flower.py"
# the random test model; max_len 16 shares the session's tokenization with the other tiny tests
SMALL = {
    "num_clients": 12,
    "rounds": 2,
    "per_round": 3,
    "model": "tiny-bert",
    "max_train_samples": 120,
    "max_len": 16,
}


@pytest.fixture(scope="module")
def vs():
    spec = importlib.util.spec_from_file_location("vs_flower", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_flower"] = mod  # the name the benchmark runs under
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCH.parent))  # it imports its sibling harness
        spec.loader.exec_module(mod)
        yield mod
    sys.modules.pop("vs_flower", None)


def _arrays(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {n: v.numpy().copy() for n, v in params.items()}


def test_both_engines_get_the_same_schedule_batches_and_start(vs):
    cfg = vs.workload_config(**SMALL)
    ours, actor = vs.Workload.build(cfg), vs.Workload.build(cfg)  # our process, a Flower actor
    assert ours.schedule == actor.schedule == participation_schedule(ours.ctx)
    assert [len(c) for c in ours.schedule] == [3, 3]
    for rnd, clients in enumerate(ours.schedule):
        for cid in clients:
            a, b = ours.batches(rnd, cid), actor.batches(rnd, cid)
            assert len(a) == 1 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    groups = {ours.ctx.model.group_of[n] for n in ours.names}
    assert EMB not in groups and HEAD in groups and set(range(ours.ctx.model.num_blocks)) <= groups
    for n, v in ours.get_parameters().items():
        assert torch.equal(v, actor.get_parameters()[n])


def test_flower_clients_average_to_our_rounds(vs):
    """Flower's way (each client gets the global arrays, trains, returns its arrays; FedAvg of weights by
    num-examples) ends where our rounds (deltas averaged on one shared model) end."""
    cfg = vs.workload_config(**SMALL)
    ours, actor = vs.Workload.build(cfg), vs.Workload.build(cfg)
    glob = _arrays(actor.get_parameters())
    for rnd, clients in enumerate(actor.schedule):
        start = _arrays(ours.get_parameters())
        ours.ours_round(rnd)
        replies = []
        for cid in clients:
            actor.set_parameters({n: torch.from_numpy(v) for n, v in glob.items()})
            actor.train(rnd, cid)
            replies.append((actor.num_samples(cid), _arrays(actor.get_parameters())))
        total = sum(w for w, _ in replies)
        glob = {n: sum(a[n] * (w / total) for w, a in replies) for n in glob}
        mine = _arrays(ours.get_parameters())
        num = sum(float(((glob[n] - mine[n]) ** 2).sum()) for n in mine)
        den = sum(float(((mine[n] - start[n]) ** 2).sum()) for n in mine)
        assert den > 0 and (num / den) ** 0.5 < 1e-3  # float32 rounding of weights vs deltas


def test_client_app_and_strategy_run_the_scheduled_clients(vs, monkeypatch):
    pytest.importorskip("flwr", reason="Flower runs in .venv-flower (make perf-flower)")
    from flwr.app import ArrayRecord, ConfigRecord, Context, MessageType, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    for attr in ("_task_id", "_run_id", "_node_id"):  # what run_simulation sets for a ServerApp
        monkeypatch.setattr(TaskIdentity, attr, 1)

    spec = json.dumps(SMALL, sort_keys=True)
    w = vs.cached_workload(spec)

    class Grid:  # what FedAvg's sampler asks of a grid
        def get_node_ids(self):
            return list(range(100, 100 + SMALL["num_clients"]))

    strategy = vs.scheduled_fedavg(w.schedule, SMALL["num_clients"], SMALL["per_round"])
    start = ArrayRecord(w.get_parameters())
    msgs = list(strategy.configure_train(2, start, ConfigRecord({"workload": spec}), Grid()))
    assert sorted(int(m.content["config"]["cid"]) for m in msgs) == w.schedule[1]
    assert len({m.metadata.dst_node_id for m in msgs}) == SMALL["per_round"]
    assert all(m.metadata.message_type == MessageType.TRAIN for m in msgs)

    init = {n: v.clone() for n, v in w.get_parameters().items()}
    msg = msgs[0]
    msg.metadata.__dict__["_message_id"] = "m0"  # set by the link when a message is pushed
    context = Context(
        run_id=1, node_id=msg.metadata.dst_node_id, node_config={}, state=RecordDict(), run_config={}
    )
    reply = vs.make_client_app()(msg, context)
    cid = int(msg.content["config"]["cid"])
    assert reply.content["metrics"]["num-examples"] == w.num_samples(cid)
    ref = vs.Workload.build(vs.workload_config(**SMALL))
    ref.set_parameters(init)
    ref.train(1, cid)
    got = reply.content["arrays"].to_torch_state_dict()
    for n, v in ref.get_parameters().items():
        assert torch.equal(got[n], v), n
