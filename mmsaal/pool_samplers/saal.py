# Copyright (c) mmsaal contributors. All rights reserved.
from typing import List, Optional, Sequence

import torch

from mmsaal.adapters.base import PerturbScope
from mmsaal.registry import POOL_SAMPLERS
from mmsaal.sharpness import PERTURBATION_MODES
from .base import BasePoolSampler

SCORES = ('max', 'diff')


@POOL_SAMPLERS.register_module()
class SAALSampler(BasePoolSampler):
    """Sharpness-Aware Active Learning (Kim et al., ICML 2023).

    Each item is scored by its training loss after a one-step adversarial
    weight perturbation, against the model's own predictions as labels
    (``shared/SAAL.md``); the largest scores are queried.

    Args:
        rho (float): Radius of the perturbation. Defaults to 0.05.
        perturbation (str): ``'adaptive'`` (ASAM) or ``'sam'``. Defaults to
            ``'adaptive'``.
        score (str): ``'max'`` (the perturbed loss) or ``'diff'`` (perturbed
            minus original). Defaults to ``'max'``.
        diversity (bool): k-means++ seeding over the scores instead of
            top-k. Defaults to False.
        perturb_scope (str | Sequence[str]): Which parameters move:
            ``'head'`` (RPN + RoI heads, or the dense head), ``'neck+head'``,
            ``'all'``, or parameter-name prefixes. The stages that do not
            move run once per batch without autograd. Defaults to ``'head'``.
        score_thr (float): Detections above it are pseudo boxes. Defaults
            to 0.3.
        max_pseudo_per_img (int): At most this many pseudo boxes per image.
            Defaults to 100.
        loss_terms (Sequence[str], optional): Entries of the loss dict to
            sum. Defaults to None (every ``loss*`` entry).
        seed (int): Seed of the random draws inside the loss (proposal
            sampling), fixed per image. Defaults to 0.
        score_resolution (float, optional): Segmentation only: score at this
            scale of the input and upsample the loss maps. Defaults to None.
        with_cp (bool, optional): Activation checkpointing of the backbone's
            blocks while scoring, when the backbone moves (``perturb_scope=
            'all'``): it then costs one more backbone forward instead of
            holding all its activations. None follows the model config's
            own ``with_cp``; either way it runs non-reentrant, which
            ``torch.autograd.grad`` needs. Defaults to None.

    For a segmentor, the loss of an image is its per-pixel decode-head loss
    against its argmax prediction; ``'head'`` is the decode head; an
    image-level score is the mean of its map (see
    :class:`~mmsaal.adapters.segmentation.SegmentationSAAL`).
    """

    def __init__(self,
                 rho: float = 0.05,
                 perturbation: str = 'adaptive',
                 score: str = 'max',
                 diversity: bool = False,
                 perturb_scope: PerturbScope = 'head',
                 score_thr: float = 0.3,
                 max_pseudo_per_img: int = 100,
                 loss_terms: Optional[Sequence[str]] = None,
                 seed: int = 0,
                 score_resolution: Optional[float] = None,
                 with_cp: Optional[bool] = None) -> None:
        super().__init__(diversity=diversity)
        if perturbation not in PERTURBATION_MODES:
            raise ValueError(f'SAALSampler.perturbation must be one of '
                             f'{PERTURBATION_MODES}, got {perturbation!r}')
        if score not in SCORES:
            raise ValueError(f'SAALSampler.score must be one of {SCORES}, '
                             f'got {score!r}')
        if rho <= 0:
            raise ValueError(f'SAALSampler.rho must be > 0, got {rho}')
        self.rho = rho
        self.perturbation = perturbation
        self.score = score
        self.perturb_scope = perturb_scope
        self.score_thr = score_thr
        self.max_pseudo_per_img = max_pseudo_per_img
        self.loss_terms = loss_terms
        self.seed = seed
        self.score_resolution = score_resolution
        self.with_cp = with_cp

    def adapter(self, model: torch.nn.Module):
        """The task adapter that builds per-instance loss closures."""
        from mmdet.models.detectors import BaseDetector
        if isinstance(model, BaseDetector):
            from mmsaal.adapters.detection import DetectionSAAL
            return DetectionSAAL(model, self.perturb_scope, self.score_thr,
                                 self.max_pseudo_per_img, self.loss_terms,
                                 self.seed, self.with_cp)
        from mmseg.models.segmentors import EncoderDecoder
        if isinstance(model, EncoderDecoder):
            from mmsaal.adapters.segmentation import SegmentationSAAL
            return SegmentationSAAL(model, self.perturb_scope,
                                    self.score_resolution, self.with_cp)
        raise TypeError(
            f'SAALSampler scores mmdet detectors (BaseDetector) and mmseg '
            f'segmentors (EncoderDecoder), not {type(model).__name__}')

    def _combine(self, before: torch.Tensor,
                 after: torch.Tensor) -> torch.Tensor:
        return after if self.score == 'max' else after - before

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        adapter = self.adapter(model)
        if hasattr(adapter, 'loss_maps'):
            return [
                float(score_map.mean())
                for score_map in self.score_maps(model, data_batch, adapter)
            ]
        pairs = adapter.losses_before_after(data_batch, self.rho,
                                            self.perturbation)
        return [float(self._combine(*pair)) for pair in pairs]

    def score_maps(self, model: torch.nn.Module, data_batch: dict,
                   adapter=None) -> List[torch.Tensor]:
        adapter = adapter or self.adapter(model)
        if not hasattr(adapter, 'loss_maps'):
            super().score_maps(model, data_batch)
        return [
            self._combine(*pair) for pair in adapter.loss_maps(
                data_batch, self.rho, self.perturbation)
        ]
