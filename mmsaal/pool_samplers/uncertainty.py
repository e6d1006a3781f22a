# Copyright (c) mmsaal contributors. All rights reserved.
"""Uncertainty baselines over a model's real predictions."""
from typing import List, Sequence, Tuple

import torch

from mmsaal.registry import POOL_SAMPLERS
from mmsaal.tasks import task_of_prediction
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
        """One item's score: its task
        (:func:`~mmsaal.tasks.task_of_prediction`) reads the fields it
        predicts and calls :meth:`score_detections`, :meth:`score_classes`
        or :meth:`pixel_scores`."""
        return task_of_prediction(prediction).uncertainty(self, prediction)

    def score_classes(self, probs: torch.Tensor) -> float:
        """An image's score from a classifier's class probabilities
        ``(C,)`` (mmpretrain's ``pred_score``)."""
        return float(self.pixel_scores_of(probs[:, None, None]))

    def score_detections(self, scores: torch.Tensor) -> float:
        """One image's score from its detection confidences."""
        raise NotImplementedError(
            f'{type(self).__name__} does not score detections')

    def pixel_scores(self, prediction) -> torch.Tensor:
        """An ``(H, W)`` map from a segmentation prediction."""
        return self.pixel_scores_of(class_probabilities(prediction))

    def pixel_scores_of(self, probs: torch.Tensor) -> torch.Tensor:
        """An ``(H, W)`` map from class probabilities ``(C, H, W)``: the
        uncertainty a classifier's image or a segmentor's pixel scores."""
        raise NotImplementedError(
            f'{type(self).__name__} does not score class probabilities')


@POOL_SAMPLERS.register_module()
class EntropySampler(PredictionSampler):
    """Query the items whose predictions are the most uncertain.

    Each detection's confidence ``s`` (the class score mmdet reports after
    NMS) counts as a Bernoulli probability; its entropy
    ``-s log s - (1 - s) log(1 - s)`` is reduced over the image's detections
    by ``aggregation``. An image without detections scores 0. For a
    classifier, an image scores the entropy of its class distribution; for
    a segmentor, each pixel does (the image: their mean; ``aggregation`` is
    unused).

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

    def pixel_scores_of(self, probs: torch.Tensor) -> torch.Tensor:
        return softmax_entropy(probs)


@POOL_SAMPLERS.register_module()
class LeastConfidenceSampler(PredictionSampler):
    """Query the items whose most confident detection is the least sure.

    Score: ``1 - max`` detection confidence (1 for an image without any
    detection, which the model cannot find anything in); for a classifier
    (its image) or a segmentor (each pixel), ``1 - max`` class
    probability.

    Args:
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def score_detections(self, scores: torch.Tensor) -> float:
        return 1.0 - float(scores.max()) if scores.numel() else 1.0

    def pixel_scores_of(self, probs: torch.Tensor) -> torch.Tensor:
        return 1.0 - probs.max(dim=0).values


@POOL_SAMPLERS.register_module()
class MarginSampler(PredictionSampler):
    """Query the items whose two likeliest classes are the closest.

    Score: ``1 - (p1 - p2)``, the best class probability minus the second
    (Scheffer et al., 2001), for a classifier's image or a segmentor's
    pixel. A detection has one confidence and no second class: detectors
    are refused.

    Args:
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def pixel_scores_of(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.shape[0] < 2:
            return torch.zeros(probs.shape[1:])
        top = probs.topk(2, dim=0).values
        return 1.0 - (top[0] - top[1])

    def score_detections(self, scores: torch.Tensor) -> float:
        raise NotImplementedError(
            'MarginSampler compares the two likeliest classes, and mmdet '
            'reports one confidence per detection: use EntropySampler or '
            'LeastConfidenceSampler for detectors')

