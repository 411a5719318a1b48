"""Client partitions: IID or Dirichlet label skew via ``flwr_datasets`` partitioners, or natural
clients (each a real source, e.g. a movie's reviews)."""

from __future__ import annotations

import warnings

import datasets as hfd
import numpy as np
from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner

RESEEDS = 10  # fresh seeds tried after flwr's own 11 draws fail (see ``dirichlet``)


class PartitionError(ValueError):
    """The requested partition cannot be built; the message says which numbers to change."""


def natural(groups: np.ndarray, num_clients: int, seed: int) -> list[np.ndarray]:
    """Each client is a fixed set of real sources: the distinct ``groups`` codes, in a seeded order, cut
    into ``num_clients`` runs of (nearly) equal source counts; with as many clients as sources, a client
    is one source. By hand: flwr's ``GroupedNaturalIdPartitioner`` fixes the group size, not the client
    count, and does not shuffle with a seed."""
    ids = np.unique(groups)
    if num_clients > len(ids):
        raise PartitionError(
            f"a natural partition has {len(ids)} sources in the training rows, fewer than "
            f"fl.num_clients={num_clients}; lower fl.num_clients to at most {len(ids)}"
        )
    order = np.random.default_rng(seed).permutation(ids)
    member = np.empty(ids.max() + 1, dtype=np.int64)
    for c, chunk in enumerate(np.array_split(order, num_clients)):
        member[chunk] = c
    owner = member[groups]
    return [np.flatnonzero(owner == c) for c in range(num_clients)]


def partition(
    labels: np.ndarray,
    num_clients: int,
    alpha: float | str,
    seed: int,
    min_partition_size: int = 2,
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Indices of each client's samples. ``alpha='iid'`` gives an IID split; ``natural:<column>`` one by
    source (``groups``: each row's source code)."""
    if isinstance(alpha, str) and alpha.startswith("natural:"):
        if groups is None:
            raise PartitionError(f"partition {alpha!r} needs each row's source ({alpha[8:]!r} codes)")
        return natural(groups, num_clients, seed)
    n = len(labels)
    if num_clients * max(min_partition_size, 1) > n:
        raise PartitionError(
            f"cannot give {num_clients} clients at least {max(min_partition_size, 1)} samples each from {n} "
            f"samples; lower fl.num_clients or data.min_partition_size, or use more data"
        )
    ds = hfd.Dataset.from_dict({"label": labels.tolist(), "idx": np.arange(n).tolist()})
    if alpha == "iid":
        part = IidPartitioner(num_partitions=num_clients)
        part.dataset = ds
        sizes = [len(part.load_partition(i)) for i in range(num_clients)]
        # IidPartitioner does not shuffle with our seed: its sizes, our seeded permutation
        out = np.split(np.random.default_rng(seed).permutation(n), np.cumsum(sizes)[:-1])
    else:
        out = dirichlet(ds, num_clients, float(alpha), seed, min_partition_size)
    empty = [i for i, p in enumerate(out) if len(p) == 0]
    if empty and min_partition_size > 0:
        raise PartitionError(f"clients {empty} got no samples; raise alpha or lower fl.num_clients")
    return [np.sort(p) for p in out]


def dirichlet(
    ds: hfd.Dataset, num_clients: int, alpha: float, seed: int, min_partition_size: int
) -> list[np.ndarray]:
    """flwr's Dirichlet split, seeded. flwr gives up after 11 draws that leave a client below
    ``min_partition_size``; then up to ``RESEEDS`` more partitioners run, each seeded from
    ``(seed, r)``, so the split stays a deterministic draw conditioned on every client having enough
    samples (a seed that succeeds at once gives flwr's own split, unchanged)."""
    for r in range(RESEEDS + 1):
        part = DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=alpha,
            min_partition_size=min_partition_size,
            self_balancing=False,
            shuffle=True,
            seed=seed if r == 0 else int(np.random.SeedSequence([seed, r]).generate_state(1)[0]),
        )
        part.dataset = ds
        try:
            with warnings.catch_warnings():  # its retry warnings end in our one error below
                warnings.simplefilter("ignore", UserWarning)
                return [np.asarray(part.load_partition(i)["idx"], dtype=np.int64) for i in range(num_clients)]
        except ValueError:
            continue
    raise PartitionError(
        f"Dirichlet partition with alpha={alpha} over {num_clients} clients and {ds.num_rows} samples "
        f"({len(ds.unique('label'))} classes) could not give every client >= {min_partition_size} samples "
        f"in {11 * (RESEEDS + 1)} draws. Raise alpha, lower fl.num_clients, or set data.min_partition_size "
        f"lower (0 allows empty clients)."
    )


def label_counts(labels: np.ndarray, parts: list[np.ndarray], num_labels: int) -> np.ndarray:
    """The client × label count matrix."""
    return np.stack([np.bincount(labels[p], minlength=num_labels) for p in parts])


def natural_client_test(
    train_groups: np.ndarray, test_groups: np.ndarray, clients: list[np.ndarray]
) -> list[np.ndarray]:
    """Each client's own held-out rows: the test rows of its sources (personalized evaluation)."""
    return [np.flatnonzero(np.isin(test_groups, np.unique(train_groups[p]))) for p in clients]


def client_test_split(
    test_labels: np.ndarray, train_counts: np.ndarray, seed: int, per_client: int | None = None
) -> list[np.ndarray]:
    """Per-client test indices drawn with the client's own label mix (for personalized evaluation).

    Each client gets ``per_client`` test samples (default: test size / clients) whose labels follow
    its training label distribution; sampling is without replacement within a client.
    """
    rng = np.random.default_rng(seed)
    num_clients = train_counts.shape[0]
    per_client = per_client or max(1, len(test_labels) // num_clients)
    by_label = [np.flatnonzero(test_labels == c) for c in range(train_counts.shape[1])]
    out = []
    for i in range(num_clients):
        if train_counts[i].sum() == 0:  # no label mix to follow (multinomial would put all on the last label)
            out.append(np.empty(0, dtype=np.int64))
            continue
        p = train_counts[i] / train_counts[i].sum()
        want = rng.multinomial(per_client, p)
        idx = [
            rng.choice(by_label[c], size=min(k, len(by_label[c])), replace=False)
            for c, k in enumerate(want)
            if k
        ]
        out.append(np.sort(np.concatenate(idx)) if idx else np.empty(0, dtype=np.int64))
    return out
