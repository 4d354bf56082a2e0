"""P x K batch sampling: each batch holds P identities with up to K images of each, so every
anchor has positives and negatives in its own batch for online triplet mining.

An epoch visits every identity once, in a fresh random order. Identities with fewer than K
images contribute all of them (LFW has many people with two or three photos; repeating a
photo would make trivially easy positives). The generator's state is part of a training
checkpoint, so a resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PKSampler:
    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0, *,
                 rank: int = 0, world: int = 1) -> None:
        if p < 2 or k < 2:
            raise ValueError("P x K sampling needs P >= 2 identities and K >= 2 images")
        self.p, self.k, self.rank, self.world = p, k, rank, world
        self.rng = np.random.default_rng(seed)
        labels = np.asarray(labels)
        self.members = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
        self.members = [m for m in self.members if len(m) >= 2]
        if len(self.members) < 2:
            raise ValueError("P x K sampling needs at least two identities with two images")

    def epoch(self) -> list[np.ndarray]:
        """This epoch's batches (chip indices) for this process's rank."""
        order = self.rng.permutation(len(self.members))
        batches = []
        for start in range(0, len(order) - self.p + 1, self.p):
            idx = [self.rng.choice(self.members[i], min(self.k, len(self.members[i])),
                                   replace=False) for i in order[start:start + self.p]]
            batches.append(np.concatenate(idx))
        return batches[self.rank::self.world]

    def state_dict(self) -> dict[str, Any]:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
