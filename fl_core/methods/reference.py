"""Reference methods (spec: baselines.md, project specs): full fine-tuning, head only, fixed top/bottom-k."""

from __future__ import annotations

from fl_core.methods.base import Method, TrainPlan, register
from fl_core.params.reference import KParams


@register("full")
class Full(Method):
    """FedAvg, every client trains every block + head: the upper reference (McMahan et al. 2017)."""

    family = "references"

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of(range(self.num_blocks)))


@register("head")
class Head(Method):
    """Only the classifier head (+ HF's pooler under cls pooling): a federated linear probe, the lower reference."""

    family = "references"

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of([]))

    def never_trained_below(self) -> int:
        return self.num_blocks


@register("top_k")
class TopK(Method):
    """The ``k`` blocks nearest the output, fixed, + head."""

    family = "references"

    Params = KParams

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of(range(self.num_blocks - self.p.k, self.num_blocks)))

    def never_trained_below(self) -> int:
        return self.num_blocks - self.p.k


@register("bottom_k")
class BottomK(Method):
    """The ``k`` blocks nearest the input, fixed, + head."""

    family = "references"

    Params = KParams

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of(range(self.p.k)))
