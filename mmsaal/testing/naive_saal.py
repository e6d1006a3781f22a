# Copyright (c) mmsaal contributors. All rights reserved.
"""The procedure SAAL's classification code follows, applied to a detector
as is: a deep copy of the model per image, a full forward and backward, an
in-place step, a full forward. It is the yardstick of the benchmark and the
tests, never used for scoring."""
import copy
from typing import List, Tuple

import torch

from mmsaal.adapters.base import instance_seed, seeded, sum_losses
from mmsaal.adapters.detection import pseudo_sample


def naive_detection_scores(model: torch.nn.Module,
                           data_batch: dict,
                           rho: float = 0.05,
                           mode: str = 'adaptive',
                           score_thr: float = 0.3,
                           max_pseudo_per_img: int = 100,
                           seed: int = 0) -> List[Tuple[float, float]]:
    """``(L0, L1)`` per image with every parameter perturbed."""
    data = model.data_preprocessor(data_batch, False)
    inputs, samples = data['inputs'], data['data_samples']
    results = []
    for index, sample in enumerate(samples):
        clone = copy.deepcopy(model)
        image = inputs[index:index + 1]
        with torch.no_grad():
            prediction = clone.predict(image, [sample], rescale=False)[0]
        pseudo = pseudo_sample(sample, prediction, score_thr,
                               max_pseudo_per_img)
        image_seed = instance_seed(seed, sample.img_path)
        with seeded(image_seed):
            before = sum_losses(clone.loss(image, [pseudo]))
        before.backward()
        params = [p for p in clone.parameters() if p.requires_grad]
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p)
            for p in params
        ]
        with torch.no_grad():
            if mode == 'adaptive':
                norm = torch.sqrt(
                    sum(((p.abs() * g)**2).sum()
                        for p, g in zip(params, grads)))
                for p, g in zip(params, grads):
                    p.add_(rho * p.abs()**2 * g / (norm + 1e-12))
            else:
                norm = torch.sqrt(sum((g**2).sum() for g in grads))
                for p, g in zip(params, grads):
                    p.add_(rho * g / (norm + 1e-12))
            with seeded(image_seed):
                after = sum_losses(clone.loss(image, [pseudo]))
        results.append((before.item(), after.item()))
    return results
