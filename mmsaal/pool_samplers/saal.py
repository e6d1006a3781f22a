# Copyright (c) mmsaal contributors. All rights reserved.
import contextlib
import inspect
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch

from mmsaal.adapters import find_adapter
from mmsaal.adapters.base import PerturbScope
from mmsaal.registry import POOL_SAMPLERS
from mmsaal.sharpness import APPROXIMATIONS, PERTURBATION_MODES
from .base import BasePoolSampler
from .ripu import region_impurity

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
        diversity (bool | str): False (top-k), True (k-means++ seeding
            over the scores) or ``'classes'`` (over the units' predicted
            classes; region and pixel queries). See
            :class:`BasePoolSampler`. Defaults to False.
        approximation (str): ``'exact'`` (a perturbed pass) or
            ``'first_order'``: L1 = L0 + rho * ||T g|| (ASAM, ``T = |w|``;
            ``||g||`` for SAM), the ascent step's first-order value, with no
            perturbed pass. For image queries only: it gives no pixel maps.
            Defaults to ``'exact'``.
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
        recompute_proposals (bool, optional): Two-stage detection,
            ``'head'`` scope: False evaluates the perturbed loss on the
            unperturbed pass's RPN targets, sampled RoIs and RoI features
            (see :class:`~mmsaal.adapters.detection.DetectionSAAL`); True
            runs the whole loss again; None: False where it applies, True
            elsewhere. Defaults to None.
        score_resolution (float, optional): Segmentation: score at this
            scale of the input and upsample the loss maps. Defaults to None.
        impurity_radius (int, optional): Segmentation: multiply each score
            map by the region impurity of the pseudo-label over the
            ``(2 * impurity_radius + 1)``-square around each pixel (RIPU's
            impurity, :func:`~mmsaal.pool_samplers.ripu.region_impurity`,
            in place of its entropy term). A departure from SAAL's score:
            units inside one predicted class score 0, so the budget goes to
            the sharpest class boundaries. None keeps SAAL's score.
            Defaults to None.
        with_cp (bool, optional): Activation checkpointing of the backbone's
            blocks while scoring, when the backbone moves (``perturb_scope=
            'all'``): it then costs one more backbone forward instead of
            holding all its activations. None follows the model config's
            own ``with_cp``; either way it runs non-reentrant, which
            ``torch.autograd.grad`` needs. Defaults to None.
        per_sample (str): Classification, ``perturb_scope='all'``:
            ``'per_image'`` (one image at a time) or ``'batched'`` (each
            image's gradient from one batched backward, the perturbed
            passes of a chunk at once): the same scores, at a cost that
            depends on the model and the machine. See
            :class:`~mmsaal.adapters.classification.ClassificationSAAL`.
            Defaults to ``'per_image'``.

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
                   'recompute_proposals', 'score_resolution', 'per_sample')

    def __init__(self,
                 rho: float = 0.05,
                 perturbation: str = 'adaptive',
                 score: str = 'max',
                 diversity: Union[bool, str] = False,
                 approximation: str = 'exact',
                 perturb_scope: PerturbScope = 'head',
                 score_thr: float = 0.3,
                 max_pseudo_per_img: int = 100,
                 loss_terms: Optional[Sequence[str]] = None,
                 seed: int = 0,
                 recompute_proposals: Optional[bool] = None,
                 score_resolution: Optional[float] = None,
                 impurity_radius: Optional[int] = None,
                 with_cp: Optional[bool] = None,
                 per_sample: str = 'per_image') -> None:
        super().__init__(diversity=diversity)
        if perturbation not in PERTURBATION_MODES:
            raise ValueError(f'SAALSampler.perturbation must be one of '
                             f'{PERTURBATION_MODES}, got {perturbation!r}')
        if score not in SCORES:
            raise ValueError(f'SAALSampler.score must be one of {SCORES}, '
                             f'got {score!r}')
        if rho <= 0:
            raise ValueError(f'SAALSampler.rho must be > 0, got {rho}')
        if approximation not in APPROXIMATIONS:
            raise ValueError(f'SAALSampler.approximation must be one of '
                             f'{APPROXIMATIONS}, got {approximation!r}')
        if approximation != 'exact' and impurity_radius is not None:
            raise ValueError(
                f'SAALSampler.impurity_radius weighs pixel maps, which '
                f'approximation={approximation!r} does not give: use one '
                f'of them')
        if impurity_radius is not None and (
                not isinstance(impurity_radius, int) or impurity_radius < 1):
            raise ValueError(f'SAALSampler.impurity_radius must be None or '
                             f'an int >= 1, got {impurity_radius!r}')
        self.rho = rho
        self.perturbation = perturbation
        self.score = score
        self.approximation = approximation
        self.perturb_scope = perturb_scope
        self.score_thr = score_thr
        self.max_pseudo_per_img = max_pseudo_per_img
        self.loss_terms = loss_terms
        self.seed = seed
        self.recompute_proposals = recompute_proposals
        self.score_resolution = score_resolution
        self.impurity_radius = impurity_radius
        self.with_cp = with_cp
        self.per_sample = per_sample
        self._adapter = None  # the round's, inside scoring()

    def adapter(self, model: torch.nn.Module):
        """Build the task adapter registered for ``model`` with this
        sampler's fields; a task field the adapter does not take, set away
        from its default, is an error that names it."""
        adapter = find_adapter(model)
        if self.impurity_radius is not None and not adapter.PIXEL_MAPS:
            raise ValueError(
                f'SAALSampler.impurity_radius={self.impurity_radius!r} '
                f'weighs segmentation loss maps, and a '
                f'{type(model).__name__} gives none: remove impurity_radius '
                f'from the pool_sampler config.')
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

    def _scores(self, adapter, data_batch: dict,
                with_labels: bool = False) -> List[Tuple[torch.Tensor, ...]]:
        """Each image's score map, and its pseudo-label with
        ``with_labels``."""
        # Only options away from their defaults, so an adapter registered
        # without them still serves the default score. Labels come from
        # segmentation adapters only: adapter() and _pixel_adapter() refuse
        # what would ask a detector for them.
        options = {}
        if self.approximation != 'exact':
            options['approximation'] = self.approximation
        if with_labels or self.impurity_radius is not None:
            options['with_labels'] = True
        maps = adapter.instance_losses(data_batch, self.rho,
                                       self.perturbation, **options)
        results = []
        for before, after, *labels in maps:
            score = after if self.score == 'max' else after - before
            if self.impurity_radius is not None:
                score = score * region_impurity(
                    labels[0], adapter.model.decode_head.num_classes,
                    self.impurity_radius)
            results.append((score, *labels))
        return results

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        """A float per item: its score, or the mean of its score map."""
        return [
            float(score.mean())
            for score, *_ in self._scores(self._adapter_for(model),
                                          data_batch)
        ]

    def score_maps(self, model: torch.nn.Module,
                   data_batch: dict) -> List[torch.Tensor]:
        return [
            score for score, *_ in self._scores(
                self._pixel_adapter(model, data_batch), data_batch)
        ]

    def labeled_score_maps(
            self, model: torch.nn.Module,
            data_batch: dict) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        return self._scores(
            self._pixel_adapter(model, data_batch), data_batch,
            with_labels=True)

    def _pixel_adapter(self, model: torch.nn.Module, data_batch: dict):
        adapter = self._adapter_for(model)
        if not adapter.PIXEL_MAPS:
            super().score_maps(model, data_batch)  # raises: names the task
        if self.approximation != 'exact':
            raise ValueError(self._no_maps_message())
        return adapter

    def _no_maps_message(self) -> str:
        return (f'SAALSampler.approximation={self.approximation!r} scores '
                f'whole images (L0 + rho * ||T g||) and gives no pixel '
                f"maps for region or pixel queries: use approximation="
                f"'exact', or granularity='image'")

    def check_granularity(self, granularity: str) -> None:
        super().check_granularity(granularity)
        if granularity != 'image' and self.approximation != 'exact':
            raise ValueError(self._no_maps_message())
