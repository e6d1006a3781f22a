# Copyright (c) mmsaal contributors. All rights reserved.
"""Uncertainty baselines over a model's real predictions."""
from typing import Sequence

import torch

from mmsaal.registry import POOL_SAMPLERS
from .base import BasePoolSampler

AGGREGATIONS = ('max', 'mean', 'sum')


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of Bernoulli(p), elementwise, 0 at p in {0, 1}."""
    p = p.clamp(1e-12, 1 - 1e-12)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def aggregate(values: torch.Tensor, how: str) -> float:
    """Reduce per-detection values to one image score (0 when empty)."""
    if values.numel() == 0:
        return 0.0
    return float(getattr(values, how)())


class PredictionSampler(BasePoolSampler):
    """Scores items from ``model.test_step`` outputs, one per item."""

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        with torch.no_grad():
            predictions = model.test_step(data_batch)
        return [self.score_prediction(p) for p in predictions]

    def score_prediction(self, prediction) -> float:
        raise NotImplementedError


@POOL_SAMPLERS.register_module()
class EntropySampler(PredictionSampler):
    """Query the items whose detections are the most uncertain.

    Each detection's confidence ``s`` (the class score mmdet reports after
    NMS) counts as a Bernoulli probability; its entropy
    ``-s log s - (1 - s) log(1 - s)`` is reduced over the image's detections
    by ``aggregation``. An image without detections scores 0.

    Args:
        aggregation (str): ``'max'``, ``'mean'`` or ``'sum'`` over the
            detections. Defaults to ``'max'``.
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def __init__(self, aggregation: str = 'max',
                 diversity: bool = False) -> None:
        super().__init__(diversity=diversity)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f'EntropySampler.aggregation must be one of '
                             f'{AGGREGATIONS}, got {aggregation!r}')
        self.aggregation = aggregation

    def score_prediction(self, prediction) -> float:
        scores = prediction.pred_instances.scores.float()
        return aggregate(binary_entropy(scores), self.aggregation)


@POOL_SAMPLERS.register_module()
class LeastConfidenceSampler(PredictionSampler):
    """Query the items whose most confident detection is the least sure.

    Score: ``1 - max`` detection confidence (1 for an image without any
    detection, which the model cannot find anything in).

    Args:
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def score_prediction(self, prediction) -> float:
        scores = prediction.pred_instances.scores.float()
        return 1.0 - float(scores.max()) if scores.numel() else 1.0

