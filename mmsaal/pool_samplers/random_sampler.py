# Copyright (c) mmsaal contributors. All rights reserved.
from typing import Optional

import numpy as np

from mmsaal.registry import POOL_SAMPLERS
from .base import BasePoolSampler


@POOL_SAMPLERS.register_module()
class RandomSampler(BasePoolSampler):
    """Query uniformly at random (the passive-learning baseline).

    The draw comes from the round's generator, so it is the same on every
    rank, on every resume and for every world size.
    """

    needs_model = False

    def __init__(self) -> None:
        super().__init__(diversity=False)

    def select(self, scores: Optional[np.ndarray], num_candidates: int,
               budget: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(num_candidates, size=budget, replace=False)
