# Copyright (c) mmsaal contributors. All rights reserved.
from typing import List, Optional

import numpy as np
import torch

from mmsaal.adapters.base import instance_seed
from mmsaal.registry import POOL_SAMPLERS
from .base import BasePoolSampler


@POOL_SAMPLERS.register_module()
class RandomSampler(BasePoolSampler):
    """Query uniformly at random (the passive-learning baseline).

    The draw comes from the round's generator, so it is the same on every
    rank, on every resume and for every world size. Region and pixel
    queries rank the units of an image by uniform noise drawn from a seed of
    the image's path, likewise independent of ranks and batches.

    Args:
        seed (int): Seed of the pixel noise. Defaults to 0.
    """

    needs_model = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__(diversity=False)
        self.seed = seed

    def score_maps(self, model: torch.nn.Module,
                   data_batch: dict) -> List[torch.Tensor]:
        maps = []
        for sample in data_batch['data_samples']:
            generator = torch.Generator().manual_seed(
                instance_seed(self.seed, sample.img_path))
            maps.append(
                torch.rand(
                    tuple(sample.ori_shape[:2]), generator=generator))
        return maps

    def select(self,
               scores: Optional[np.ndarray],
               num_candidates: int,
               budget: int,
               rng: np.random.Generator,
               classes: Optional[np.ndarray] = None) -> np.ndarray:
        """A uniform draw of items; units (regions, pixels), which come
        scored by :meth:`score_maps`' noise, by their noise."""
        if scores is None:
            return rng.choice(num_candidates, size=budget, replace=False)
        return super().select(scores, num_candidates, budget, rng)
