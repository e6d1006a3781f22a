# Copyright (c) mmsaal contributors. All rights reserved.
"""SAAL over MMDetection detectors: pseudo boxes and per-image losses."""
import contextlib
import copy
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmsaal.registry import SAAL_ADAPTERS
from mmsaal.sharpness import loss_pair
from .base import (PerturbScope, backbone_checkpointing, cached_stage,
                   compute_cached_stage, instance_seed, perturbed_parameters,
                   recorded, replaced_forward, seeded, sum_losses)


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


class TwoStageHeads:
    """The RPN and RoI heads of a ``TwoStageDetector`` called on cached
    features: mmdet's ``TwoStageDetector.loss`` / ``predict`` written out,
    so that the RPN's raw output (``first``) serves the prediction and the
    unperturbed loss alike.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def first(self, feats: Tuple[torch.Tensor]) -> tuple:
        return self.model.rpn_head(feats)

    def predict(self, feats: Tuple[torch.Tensor], first: tuple,
                sample: DetDataSample) -> DetDataSample:
        proposals = self.model.rpn_head.predict_by_feat(
            *first, batch_img_metas=[sample.metainfo], rescale=False)
        results = self.model.roi_head.predict(
            feats, proposals, [sample], rescale=False)
        return self.model.add_pred_to_datasample([sample], results)[0]

    def loss(self, feats: Tuple[torch.Tensor], first: tuple,
             sample: DetDataSample) -> dict:
        losses = self.rpn_loss(first, sample)
        losses.update(self.model.roi_head.loss(
            feats, self.loss_proposals(first, sample), [sample]))
        return losses

    def loss_proposals(self, first: tuple, sample: DetDataSample) -> list:
        """The proposals the training loss samples its RoIs from (the
        ``rpn_proposal`` train config, as mmdet's loss takes them)."""
        model = self.model
        return model.rpn_head.predict_by_feat(
            *first,
            batch_img_metas=[sample.metainfo],
            cfg=model.train_cfg.get('rpn_proposal', model.test_cfg.rpn))

    def fixed_rois_supported(self) -> bool:
        """Whether :meth:`fixed_roi_losses` applies: an RoI head that keeps
        ``StandardRoIHead``'s ``loss`` and ``bbox_loss`` and has no mask
        branch (whose targets come from the sampled RoIs as well)."""
        roi_head = self.model.roi_head
        return isinstance(roi_head, StandardRoIHead) and all(
            getattr(type(roi_head), name) is getattr(StandardRoIHead, name)
            for name in ('loss', 'bbox_loss', '_bbox_forward')) and \
            not roi_head.with_mask

    def fixed_roi_losses(self, feats: Tuple[torch.Tensor],
                         sample: DetDataSample) -> Callable[[tuple], dict]:
        """Losses of one image with what the loss samples held fixed.

        The returned function takes the RPN's raw output. Its first call
        (the unperturbed weights) runs :meth:`loss` as is and keeps the RPN
        targets, the sampled RoIs with their assignment, and the RoIs'
        features. Later calls (the perturbed weights) give the RPN loss on
        those targets and the RoI head's loss on those RoIs: proposals,
        sampling and RoIAlign are not run again. The features are the
        cached backbone + neck output, which the ``'head'`` scope does not
        move, so the RoI features are the same under both weights.
        """
        kept = {}
        model = self.model

        def losses(first: tuple) -> dict:
            if not kept:
                with recorded(model.rpn_head, 'get_targets', kept,
                              'targets'), \
                        recorded(model.roi_head, 'bbox_loss', kept,
                                 'sampling', argument=1), \
                        recorded(model.roi_head.bbox_roi_extractor,
                                 'forward', kept, 'roi_feats'):
                    return self.loss(feats, first, sample)
            with replaced_forward(model.rpn_head, 'get_targets',
                                  kept['targets']):
                result = self.rpn_loss(first, sample)
            with replaced_forward(model.roi_head.bbox_roi_extractor,
                                  'forward', kept['roi_feats']):
                result.update(
                    model.roi_head.bbox_loss(feats,
                                             kept['sampling'])['loss_bbox'])
            return result

        return losses

    def rpn_loss(self, first: tuple, sample: DetDataSample) -> dict:
        """The RPN's losses (class-agnostic targets), named as mmdet does."""
        # The RPN is class-agnostic: its targets have label 0.
        rpn_sample = copy.deepcopy(sample)
        rpn_sample.gt_instances.labels = torch.zeros_like(
            rpn_sample.gt_instances.labels)
        gts, ignored, metas = unpack_gt_instances([rpn_sample])
        losses = self.model.rpn_head.loss_by_feat(*first, gts, metas,
                                                  ignored)
        return {
            key if 'loss' not in key or 'rpn' in key else f'rpn_{key}': value
            for key, value in losses.items()
        }


class SingleStageHeads:
    """The dense head of a ``SingleStageDetector`` called on cached
    features: mmdet's ``SingleStageDetector.loss`` / ``predict`` written
    out, so that the head's raw output (``first``) serves the prediction
    and the unperturbed loss alike.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def first(self, feats: Tuple[torch.Tensor]) -> tuple:
        return self.model.bbox_head(feats)

    def predict(self, feats: Tuple[torch.Tensor], first: tuple,
                sample: DetDataSample) -> DetDataSample:
        results = self.model.bbox_head.predict_by_feat(
            *first, batch_img_metas=[sample.metainfo], rescale=False)
        return self.model.add_pred_to_datasample([sample], results)[0]

    def loss(self, feats: Tuple[torch.Tensor], first: tuple,
             sample: DetDataSample) -> dict:
        gts, ignored, metas = unpack_gt_instances([sample])
        return self.model.bbox_head.loss_by_feat(*first, gts, metas, ignored)


def head_calls(model: torch.nn.Module):
    """:class:`TwoStageHeads` or :class:`SingleStageHeads` when ``model``
    runs mmdet's own ``loss`` / ``predict`` of those classes over dense heads
    that keep ``BaseDenseHead``'s; None for any other detector (DETR-like,
    cascades of custom logic, overridden methods), which goes the generic
    way."""

    def own(obj, base, *names) -> bool:
        return all(
            getattr(type(obj), n) is getattr(base, n) for n in names)

    if isinstance(model, TwoStageDetector) and model.with_rpn and own(
            model, TwoStageDetector, 'loss', 'predict') and own(
                model.rpn_head, BaseDenseHead, 'loss_and_predict',
                'predict'):
        return TwoStageHeads(model)
    if isinstance(model, SingleStageDetector) and own(
            model, SingleStageDetector, 'loss', 'predict') and isinstance(
                model.bbox_head, BaseDenseHead) and own(
                    model.bbox_head, BaseDenseHead, 'loss', 'predict'):
        return SingleStageHeads(model)
    return None


@SAAL_ADAPTERS.register_module(name='BaseDetector')
class DetectionSAAL:
    """Per-image SAAL scores of an mmdet detector.

    The closure is the detector's training loss against its pseudo boxes.
    The unperturbed stages run once per batch without autograd. With the
    backbone and neck fixed (``perturb_scope='head'``), two-stage and
    single-stage detectors that keep mmdet's ``loss`` / ``predict`` run
    their heads on the cached features directly (:func:`head_calls`).
    Every other case takes the generic way: the detector's own ``loss()``
    and ``predict()``, with ``extract_feat`` (or the backbone) answering
    from the cache for the duration of the call, so any detector whose
    ``loss`` and ``predict`` go through ``extract_feat`` works (DETR-like
    ones too).

    Args:
        model (nn.Module): An mmdet ``BaseDetector``.
        perturb_scope (str | Sequence[str]): See
            :func:`perturbed_parameters`.
        score_thr (float): Detections above it become pseudo boxes.
        max_pseudo_per_img (int): At most this many pseudo boxes.
        loss_terms (Sequence[str], optional): Loss-dict keys to sum; None
            sums every ``loss*`` key.
        seed (int): Seed of the per-image random draws of the loss.
        recompute_proposals (bool, optional): Two-stage detectors,
            ``'head'`` scope: True runs the whole loss again under the
            perturbed weights (RPN, proposals, RoI sampling, RoIAlign);
            False keeps the RPN targets, the sampled RoIs and their
            features of the unperturbed pass and evaluates only the
            perturbed heads on them (:meth:`TwoStageHeads.fixed_roi_losses`):
            the proposals are detached in mmdet, so the gradient that
            defines eps is taken with them fixed, and no NMS flip between
            the passes adds noise. False is refused where it does not
            apply. None: False where it applies, True elsewhere.
        with_cp (bool, optional): Checkpoint the backbone's blocks while
            scoring when it moves (see :func:`checkpointed_blocks`); None
            follows the blocks' own ``with_cp``.
    """

    #: ``SAALSampler`` fields that belong to this task.
    OPTIONS = ('score_thr', 'max_pseudo_per_img', 'loss_terms', 'seed',
               'recompute_proposals')
    #: Whether :meth:`instance_losses` gives per-pixel maps.
    PIXEL_MAPS = False

    def __init__(self,
                 model: torch.nn.Module,
                 perturb_scope: PerturbScope = 'head',
                 score_thr: float = 0.3,
                 max_pseudo_per_img: int = 100,
                 loss_terms: Optional[Sequence[str]] = None,
                 seed: int = 0,
                 recompute_proposals: Optional[bool] = None,
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
        self.heads = head_calls(model) \
            if self.stage == 'extract_feat' else None
        supported = isinstance(self.heads, TwoStageHeads) and \
            self.heads.fixed_rois_supported()
        self.fixed_rois = supported if recompute_proposals is None else \
            not recompute_proposals
        if self.fixed_rois and not supported:
            raise ValueError(
                f'recompute_proposals=False keeps the proposals and RoIs of '
                f'a two-stage detector with a StandardRoIHead (no mask '
                f'branch) scored with perturb_scope=\'head\'; this '
                f'{type(model).__name__} with perturb_scope='
                f'{perturb_scope!r} has none to keep: set '
                f'recompute_proposals=True')
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
                stack.enter_context(
                    replaced_forward(owner, attr, _sliced(cache, index)))
            if first_output is not None:
                stack.enter_context(
                    replaced_forward(*self.first_stage, first_output))
            yield

    def _first_output(self, image: torch.Tensor, cache, index: int):
        """The first moving stage's output for one image, with autograd."""
        if self.first_stage is None:
            return None
        module, attr = self.first_stage
        if self.heads is not None:
            with torch.set_grad_enabled(self.first_stage_moves):
                return self.heads.first(_sliced(cache, index))
        with torch.set_grad_enabled(self.first_stage_moves), \
                self._stages(cache, index):
            if self.stage == 'extract_feat':
                return module(self.model.extract_feat(image))
            if self.stage == 'backbone':
                return module(self.model.backbone(image))
            return self.model.extract_feat(image)

    def _predict(self, image: torch.Tensor, cache, index: int,
                 sample: DetDataSample, first_output) -> DetDataSample:
        """The detections of image ``index`` (no autograd)."""
        with torch.no_grad():
            if self.heads is not None:
                return self.heads.predict(
                    _sliced(cache, index), first_output, sample)
            with self._stages(cache, index, first_output):
                return self.model.predict(image, [sample], rescale=False)[0]

    def loss(self,
             image: torch.Tensor,
             cache,
             index: int,
             sample: DetDataSample,
             first_output=None,
             fixed: Optional[Callable[[tuple], dict]] = None) -> torch.Tensor:
        """The summed training loss of image ``index`` against ``sample``;
        ``first_output`` (None: recomputed) is the first moving stage's;
        ``fixed`` (:meth:`TwoStageHeads.fixed_roi_losses`) computes the
        heads' losses in place of :meth:`TwoStageHeads.loss`."""
        with seeded(instance_seed(self.seed, sample.img_path)):
            if self.heads is not None:
                feats = _sliced(cache, index)
                if first_output is None:
                    first_output = self.heads.first(feats)
                losses = fixed(first_output) if fixed is not None else \
                    self.heads.loss(feats, first_output, sample)
            else:
                with self._stages(cache, index, first_output):
                    losses = self.model.loss(image, [sample])
        return sum_losses(losses, self.loss_terms)

    def instance_losses(self,
                        data_batch: dict,
                        rho: float,
                        mode: str,
                        approximation: str = 'exact') -> List[tuple]:
        """``(L0, L1)`` of every image of a collated batch, scalars; L1 by
        a perturbed pass, or its first-order value (``approximation``, see
        :func:`~mmsaal.sharpness.loss_pair`)."""
        with backbone_checkpointing(self.model, self.stage, self.with_cp):
            return self._instance_losses(data_batch, rho, mode,
                                         loss_pair(approximation))

    def _instance_losses(self, data_batch: dict, rho: float, mode: str,
                         pair: Callable) -> List[tuple]:
        data = self.model.data_preprocessor(data_batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            cache = compute_cached_stage(self.model, self.stage, inputs)
        results = []
        for index, sample in enumerate(samples):
            image = inputs[index:index + 1]
            first_output = self._first_output(image, cache, index)
            prediction = self._predict(image, cache, index, sample,
                                       first_output)
            pseudo = pseudo_sample(sample, prediction, self.score_thr,
                                   self.max_pseudo_per_img)
            # The first call (original weights) reuses ``first_output``;
            # the perturbed call recomputes everything that moved (with
            # fixed RoIs: the RPN and RoI heads' outputs only).
            reuse = [first_output]
            fixed = self.heads.fixed_roi_losses(
                _sliced(cache, index), pseudo) if self.fixed_rois else None

            def closure():
                output = reuse[0]
                if self.first_stage_moves:
                    reuse[0] = None
                return self.loss(image, cache, index, pseudo, output, fixed)

            results.append(pair(closure, self.params, rho=rho, mode=mode))
        return results


def _sliced(cache, index: int):
    """Image ``index``'s share of batched multi-level features."""
    return type(cache)(level[index:index + 1] for level in cache)
