import torch

from fl_core.aggregate import per_block_fedavg
from fl_core.methods.base import ClientUpdate, TrainPlan


def _u(cid, n, **delta):
    return ClientUpdate(cid=cid, num_samples=n, plan=TrainPlan.of([]), delta=delta, train_loss=0.0)


def test_hand_computed_per_block_fedavg():
    g = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.0]), "c": torch.tensor([5.0])}
    ups = [_u(0, 1, a=torch.tensor([1.0, 0.0]), b=torch.tensor([2.0])), _u(1, 3, a=torch.tensor([5.0, 4.0]))]
    new = per_block_fedavg(ups, g)
    # a: trained by both, weights 1 and 3 -> mean delta (1*1+3*5)/4=4, (0+12)/4=3
    assert torch.equal(new["a"], torch.tensor([5.0, 4.0]))
    # b: only client 0 trained it -> its own delta, unweighted by the other client
    assert torch.equal(new["b"], torch.tensor([2.0]))
    # c: nobody trained it -> not in the update at all (stays as it was)
    assert "c" not in new


def test_everything_selected_equals_plain_fedavg():
    gen = torch.Generator().manual_seed(0)
    g = {n: torch.randn(7, 3, generator=gen) for n in "xyz"}
    clients = [{n: g[n] + torch.randn(7, 3, generator=gen) for n in g} for _ in range(4)]
    sizes = [3, 10, 1, 6]
    ups = [
        _u(i, s, **{n: c[n] - g[n] for n in g}) for i, (c, s) in enumerate(zip(clients, sizes, strict=True))
    ]
    new = per_block_fedavg(ups, g)
    for n in g:
        plain = sum(s * c[n] for c, s in zip(clients, sizes, strict=True)) / sum(sizes)
        torch.testing.assert_close(new[n], plain, rtol=0, atol=1e-6)


def test_aggregation_does_not_depend_on_arrival_order():
    g = {"a": torch.zeros(1000)}
    gen = torch.Generator().manual_seed(1)
    ups = [_u(i, i + 1, a=torch.randn(1000, generator=gen)) for i in range(5)]
    assert torch.equal(per_block_fedavg(ups, g)["a"], per_block_fedavg(ups[::-1], g)["a"])
