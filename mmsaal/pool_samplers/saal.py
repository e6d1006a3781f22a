# Copyright (c) mmsaal contributors. All rights reserved.
import contextlib
import inspect
from typing import Iterator, List, Optional, Sequence

import torch

from mmsaal.adapters import find_adapter
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
        score_thr (float): Detection: detections above it are pseudo boxes.
            Defaults to 0.3.
        max_pseudo_per_img (int): Detection: at most this many pseudo boxes
            per image. Defaults to 100.
        loss_terms (Sequence[str], optional): Detection: entries of the loss
            dict to sum. Defaults to None (every ``loss*`` entry).
        seed (int): Detection: seed of the random draws inside the loss
            (proposal sampling), fixed per image. Defaults to 0.
        score_resolution (float, optional): Segmentation: score at this
            scale of the input and upsample the loss maps. Defaults to None.
        with_cp (bool, optional): Activation checkpointing of the backbone's
            blocks while scoring, when the backbone moves (``perturb_scope=
            'all'``): it then costs one more backbone forward instead of
            holding all its activations. None follows the model config's
            own ``with_cp``; either way it runs non-reentrant, which
            ``torch.autograd.grad`` needs. Defaults to None.

    The losses come from the task adapter registered for the model
    (``SAAL_ADAPTERS``, :func:`~mmsaal.adapters.find_adapter`), built once
    per round in :meth:`scoring`. The task fields (detection, segmentation)
    belong to their adapter (its ``OPTIONS``): one set away from its default
    for a model of another task is an error.

    For a segmentor, the loss of an image is its per-pixel decode-head loss
    against its argmax prediction; ``'head'`` is the decode head; an
    image-level score is the mean of its map (see
    :class:`~mmsaal.adapters.segmentation.SegmentationSAAL`).
    """

    #: Fields that belong to one task's adapter (its ``OPTIONS``).
    TASK_FIELDS = ('score_thr', 'max_pseudo_per_img', 'loss_terms', 'seed',
                   'score_resolution')

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
        self._adapter = None  # the round's, inside scoring()

    def adapter(self, model: torch.nn.Module):
        """Build the task adapter registered for ``model`` with this
        sampler's fields; a task field the adapter does not take, set away
        from its default, is an error that names it."""
        adapter = find_adapter(model)
        defaults = inspect.signature(SAALSampler).parameters
        options = {}
        for name in self.TASK_FIELDS:
            value = getattr(self, name)
            if name in adapter.OPTIONS:
                options[name] = value
            elif value != defaults[name].default:
                raise ValueError(
                    f'SAALSampler.{name}={value!r} does not apply to a '
                    f'{type(model).__name__}: its adapter, '
                    f'{adapter.__name__}, takes '
                    f'{", ".join(adapter.OPTIONS) or "no task field"}. '
                    f'Remove {name} from the pool_sampler config.')
        return adapter(
            model,
            perturb_scope=self.perturb_scope,
            with_cp=self.with_cp,
            **options)

    @contextlib.contextmanager
    def scoring(self, model: torch.nn.Module) -> Iterator[None]:
        """Build the adapter once for the round's batches."""
        self._adapter = self.adapter(model)
        try:
            yield
        finally:
            self._adapter = None

    def _adapter_for(self, model: torch.nn.Module):
        adapter = self._adapter
        return adapter if adapter is not None and adapter.model is model \
            else self.adapter(model)

    def _scores(self, adapter, data_batch: dict) -> List[torch.Tensor]:
        pairs = adapter.instance_losses(data_batch, self.rho,
                                        self.perturbation)
        if self.score == 'max':
            return [after for _, after in pairs]
        return [after - before for before, after in pairs]

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        """A float per item: its score, or the mean of its score map."""
        return [
            float(score.mean())
            for score in self._scores(self._adapter_for(model), data_batch)
        ]

    def score_maps(self, model: torch.nn.Module,
                   data_batch: dict) -> List[torch.Tensor]:
        adapter = self._adapter_for(model)
        if not adapter.PIXEL_MAPS:
            super().score_maps(model, data_batch)
        return self._scores(adapter, data_batch)
