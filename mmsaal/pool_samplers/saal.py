# Copyright (c) mmsaal contributors. All rights reserved.
from typing import Optional, Sequence

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
                 seed: int = 0) -> None:
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

    def adapter(self, model: torch.nn.Module):
        """The task adapter that builds per-instance loss closures."""
        from mmdet.models.detectors import BaseDetector
        if isinstance(model, BaseDetector):
            from mmsaal.adapters.detection import DetectionSAAL
            return DetectionSAAL(model, self.perturb_scope, self.score_thr,
                                 self.max_pseudo_per_img, self.loss_terms,
                                 self.seed)
        raise TypeError(f'SAALSampler has no adapter for '
                        f'{type(model).__name__} yet')

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        pairs = self.adapter(model).losses_before_after(
            data_batch, self.rho, self.perturbation)
        if self.score == 'max':
            return [float(after) for _, after in pairs]
        return [float(after - before) for before, after in pairs]
