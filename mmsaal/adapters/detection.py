# Copyright (c) mmsaal contributors. All rights reserved.
"""SAAL over MMDetection detectors: pseudo boxes and per-image losses."""
from typing import List, Optional, Sequence

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmsaal.sharpness import perturbed_loss
from .base import (PerturbScope, cached_stage, instance_seed,
                   perturbed_parameters, replaced_forward, seeded, sum_losses)


def pseudo_sample(sample: DetDataSample, prediction: DetDataSample,
                  score_thr: float, max_per_img: int) -> DetDataSample:
    """A data sample whose ground truth is the model's own detections.

    Detections above ``score_thr`` (at most ``max_per_img``, best first)
    become ``gt_instances``; none above it leaves an empty ground truth, so
    the image is scored on its background loss.
    """
    pred = prediction.pred_instances
    keep = (pred.scores >= score_thr).nonzero().flatten()
    keep = keep[pred.scores[keep].argsort(descending=True)][:max_per_img]
    pseudo = DetDataSample(metainfo=sample.metainfo)
    pseudo.gt_instances = InstanceData(
        bboxes=pred.bboxes[keep].detach(), labels=pred.labels[keep])
    return pseudo


class DetectionSAAL:
    """Per-image SAAL scores of an mmdet detector.

    The detector's own ``loss()`` against its pseudo boxes is the closure,
    so any detector whose ``loss`` and ``predict`` go through
    ``extract_feat`` works (two-stage, one-stage, DETR-like). The unperturbed
    stages run once per batch without autograd.

    Args:
        model (nn.Module): An mmdet ``BaseDetector``.
        perturb_scope (str | Sequence[str]): See
            :func:`perturbed_parameters`.
        score_thr (float): Detections above it become pseudo boxes.
        max_pseudo_per_img (int): At most this many pseudo boxes.
        loss_terms (Sequence[str], optional): Loss-dict keys to sum; None
            sums every ``loss*`` key.
        seed (int): Seed of the per-image random draws of the loss.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 perturb_scope: PerturbScope = 'head',
                 score_thr: float = 0.3,
                 max_pseudo_per_img: int = 100,
                 loss_terms: Optional[Sequence[str]] = None,
                 seed: int = 0) -> None:
        self.model = model
        named = perturbed_parameters(model, perturb_scope)
        self.params = [p for _, p in named]
        self.stage = cached_stage(model, [n for n, _ in named])
        self.score_thr = score_thr
        self.max_pseudo_per_img = max_pseudo_per_img
        self.loss_terms = loss_terms
        self.seed = seed

    def _cache(self, inputs: torch.Tensor):
        if self.stage == 'extract_feat':
            return self.model.extract_feat(inputs)
        if self.stage == 'backbone':
            return self.model.backbone(inputs)
        return None

    def _stage_output(self, cache, index: Optional[int]):
        if cache is None or index is None:
            return cache
        return type(cache)(level[index:index + 1] for level in cache)

    def _run(self, cache, index: Optional[int], fn, *args, **kwargs):
        """Call ``fn`` with the cached stage (sliced to one image) in place.
        """
        if self.stage == 'none':
            return fn(*args, **kwargs)
        owner = self.model if self.stage == 'extract_feat' \
            else self.model.backbone
        attr = 'extract_feat' if self.stage == 'extract_feat' else 'forward'
        with replaced_forward(owner, attr, self._stage_output(cache, index)):
            return fn(*args, **kwargs)

    def loss(self, inputs: torch.Tensor, cache, index: int,
             sample: DetDataSample) -> torch.Tensor:
        """The summed training loss of image ``index`` against ``sample``."""
        with seeded(instance_seed(self.seed, sample.img_path)):
            losses = self._run(cache, index, self.model.loss,
                               inputs[index:index + 1], [sample])
        return sum_losses(losses, self.loss_terms)

    def losses_before_after(self, data_batch: dict, rho: float,
                            mode: str) -> List[tuple]:
        """``(L0, L1)`` of every image of a collated batch."""
        data = self.model.data_preprocessor(data_batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            cache = self._cache(inputs)
            predictions = self._run(cache, None, self.model.predict, inputs,
                                    samples, rescale=False)
        results = []
        for index, (sample, prediction) in enumerate(zip(samples,
                                                         predictions)):
            pseudo = pseudo_sample(sample, prediction, self.score_thr,
                                   self.max_pseudo_per_img)
            results.append(
                perturbed_loss(
                    lambda: self.loss(inputs, cache, index, pseudo),
                    self.params,
                    rho=rho,
                    mode=mode))
        return results
