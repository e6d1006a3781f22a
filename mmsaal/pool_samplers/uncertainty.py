# Copyright (c) mmsaal contributors. All rights reserved.
"""Uncertainty baselines over a model's real predictions."""
from typing import List, Sequence, Tuple

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


def class_probabilities(prediction) -> torch.Tensor:
    """Softmax over the classes of a segmentor's ``seg_logits`` ``(C, H, W)``
    at the original image size."""
    return prediction.seg_logits.data.float().softmax(dim=0)


def softmax_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over dim 0 of class probabilities."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(dim=0)


class PredictionSampler(BasePoolSampler):
    """Scores items from ``model.test_step`` outputs, one per item.

    Detections are scored by :meth:`score_detections`; a segmentation is
    scored by the mean of :meth:`pixel_scores`, and region or pixel queries
    rank :meth:`pixel_scores` directly.
    """

    def _predict(self, model: torch.nn.Module, data_batch: dict) -> list:
        with torch.no_grad():
            return model.test_step(data_batch)

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        return [
            self.score_prediction(p)
            for p in self._predict(model, data_batch)
        ]

    def score_maps(self, model: torch.nn.Module,
                   data_batch: dict) -> List[torch.Tensor]:
        return [
            self.pixel_scores(p).cpu()
            for p in self._predict(model, data_batch)
        ]

    def labeled_score_maps(
            self, model: torch.nn.Module,
            data_batch: dict) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        return [(self.pixel_scores(p).cpu(),
                 p.pred_sem_seg.data[0].cpu().long())
                for p in self._predict(model, data_batch)]

    def score_prediction(self, prediction) -> float:
        if 'pred_instances' in prediction:
            return self.score_detections(
                prediction.pred_instances.scores.float())
        return float(self.pixel_scores(prediction).mean())

    def score_detections(self, scores: torch.Tensor) -> float:
        """One image's score from its detection confidences."""
        raise NotImplementedError(
            f'{type(self).__name__} does not score detections')

    def pixel_scores(self, prediction) -> torch.Tensor:
        """An ``(H, W)`` map from a segmentation prediction."""
        raise NotImplementedError(
            f'{type(self).__name__} does not score segmentations')


@POOL_SAMPLERS.register_module()
class EntropySampler(PredictionSampler):
    """Query the items whose predictions are the most uncertain.

    Each detection's confidence ``s`` (the class score mmdet reports after
    NMS) counts as a Bernoulli probability; its entropy
    ``-s log s - (1 - s) log(1 - s)`` is reduced over the image's detections
    by ``aggregation``. An image without detections scores 0. For a
    segmentor, each pixel scores the entropy of its class distribution (the
    image: their mean; ``aggregation`` is unused).

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

    def score_detections(self, scores: torch.Tensor) -> float:
        return aggregate(binary_entropy(scores), self.aggregation)

    def pixel_scores(self, prediction) -> torch.Tensor:
        return softmax_entropy(class_probabilities(prediction))


@POOL_SAMPLERS.register_module()
class LeastConfidenceSampler(PredictionSampler):
    """Query the items whose most confident detection is the least sure.

    Score: ``1 - max`` detection confidence (1 for an image without any
    detection, which the model cannot find anything in); for a segmentor,
    ``1 - max`` class probability per pixel.

    Args:
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def score_detections(self, scores: torch.Tensor) -> float:
        return 1.0 - float(scores.max()) if scores.numel() else 1.0

    def pixel_scores(self, prediction) -> torch.Tensor:
        return 1.0 - class_probabilities(prediction).max(dim=0).values

