# Copyright (c) mmsaal contributors. All rights reserved.
"""SAAL over MMDetection detectors: pseudo boxes and per-image losses."""
import contextlib
from typing import List, Optional, Sequence

import torch
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmsaal.sharpness import perturbed_loss
from .base import (PerturbScope, backbone_checkpointing, cached_stage,
                   compute_cached_stage, instance_seed, perturbed_parameters,
                   replaced_forward, seeded, sum_losses)


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
        with_cp (bool, optional): Checkpoint the backbone's blocks while
            scoring when it moves (see :func:`checkpointed_blocks`); None
            follows the blocks' own ``with_cp``.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 perturb_scope: PerturbScope = 'head',
                 score_thr: float = 0.3,
                 max_pseudo_per_img: int = 100,
                 loss_terms: Optional[Sequence[str]] = None,
                 seed: int = 0,
                 with_cp: Optional[bool] = None) -> None:
        self.model = model
        named = perturbed_parameters(model, perturb_scope)
        self.params = [p for _, p in named]
        self.stage = cached_stage(model, [n for n, _ in named])
        self.score_thr = score_thr
        self.max_pseudo_per_img = max_pseudo_per_img
        self.loss_terms = loss_terms
        self.seed = seed
        self.with_cp = with_cp
        self.first_stage = self._first_moving_stage()
        # A first stage none of whose weights move serves the perturbed
        # pass as well (e.g. the RPN when only the RoI head is perturbed).
        perturbed = {id(p) for p in self.params}
        self.first_stage_moves = self.first_stage is not None and (
            self.stage == 'none' or any(
                id(p) in perturbed
                for p in self.first_stage[0].parameters()))

    def _first_moving_stage(self):
        """``(module, attribute)`` of the first stage the perturbation moves.

        Its output under the original weights serves the prediction and the
        unperturbed loss alike, so it is computed once per image (with
        autograd); only the perturbed pass runs it again.
        """
        if self.stage == 'extract_feat':
            head = self.model.rpn_head if getattr(self.model, 'with_rpn',
                                                  False) else getattr(
                                                      self.model, 'bbox_head',
                                                      None)
            return (head, 'forward') if isinstance(head,
                                                   BaseDenseHead) else None
        if self.stage == 'backbone':
            return (self.model.neck, 'forward') if getattr(
                self.model, 'with_neck', False) else None
        return self.model, 'extract_feat'

    @contextlib.contextmanager
    def _stages(self, cache, index: int, first_output=None):
        """Serve the cached stage (sliced to image ``index``) and, when
        given, the first moving stage's output from memory."""
        with contextlib.ExitStack() as stack:
            if self.stage != 'none':
                owner = self.model if self.stage == 'extract_feat' \
                    else self.model.backbone
                attr = 'extract_feat' if self.stage == 'extract_feat' \
                    else 'forward'
                sliced = type(cache)(level[index:index + 1]
                                     for level in cache)
                stack.enter_context(replaced_forward(owner, attr, sliced))
            if first_output is not None:
                stack.enter_context(
                    replaced_forward(*self.first_stage, first_output))
            yield

    def _first_output(self, image: torch.Tensor, cache, index: int):
        """The first moving stage's output for one image, with autograd."""
        if self.first_stage is None:
            return None
        module, attr = self.first_stage
        with torch.set_grad_enabled(self.first_stage_moves), \
                self._stages(cache, index):
            if self.stage == 'extract_feat':
                return module(self.model.extract_feat(image))
            if self.stage == 'backbone':
                return module(self.model.backbone(image))
            return self.model.extract_feat(image)

    def loss(self, image: torch.Tensor, cache, index: int,
             sample: DetDataSample, first_output=None) -> torch.Tensor:
        """The summed training loss of image ``index`` against ``sample``."""
        with seeded(instance_seed(self.seed, sample.img_path)), \
                self._stages(cache, index, first_output):
            losses = self.model.loss(image, [sample])
        return sum_losses(losses, self.loss_terms)

    def losses_before_after(self, data_batch: dict, rho: float,
                            mode: str) -> List[tuple]:
        """``(L0, L1)`` of every image of a collated batch."""
        with backbone_checkpointing(self.model, self.stage, self.with_cp):
            return self._losses_before_after(data_batch, rho, mode)

    def _losses_before_after(self, data_batch: dict, rho: float,
                             mode: str) -> List[tuple]:
        data = self.model.data_preprocessor(data_batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            cache = compute_cached_stage(self.model, self.stage, inputs)
        results = []
        for index, sample in enumerate(samples):
            image = inputs[index:index + 1]
            first_output = self._first_output(image, cache, index)
            with torch.no_grad(), self._stages(cache, index, first_output):
                prediction = self.model.predict(
                    image, [sample], rescale=False)[0]
            pseudo = pseudo_sample(sample, prediction, self.score_thr,
                                   self.max_pseudo_per_img)
            # The first call (original weights) reuses ``first_output``;
            # the perturbed call recomputes everything that moved.
            reuse = [first_output]

            def closure():
                output = reuse[0]
                if self.first_stage_moves:
                    reuse[0] = None
                return self.loss(image, cache, index, pseudo, output)

            results.append(
                perturbed_loss(closure, self.params, rho=rho, mode=mode))
        return results
