# Copyright (c) mmsaal contributors. All rights reserved.
"""SAAL over MMSegmentation segmentors: per-pixel perturbed loss maps."""
from typing import Callable, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample

from mmsaal.pool import IGNORE_INDEX
from mmsaal.registry import SAAL_ADAPTERS
from mmsaal.sharpness import loss_pair, perturbed_loss
from .base import (PerturbScope, backbone_checkpointing, cached_stage,
                   compute_cached_stage, perturbed_parameters)


def valid_box(sample: SegDataSample, size: Tuple[int, int],
              scale: float = 1.0) -> Tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the image inside its padded input
    of ``size`` (after scaling by ``scale``)."""
    left, right, top, bottom = sample.metainfo.get('padding_size',
                                                   (0, 0, 0, 0))
    height, width = size
    return (round(top * scale), height - round(bottom * scale),
            round(left * scale), width - round(right * scale))


def to_original_size(loss_map: torch.Tensor,
                     sample: SegDataSample) -> torch.Tensor:
    """Resize an ``(H, W)`` map to the image's original (label) size:
    bilinear for values, nearest for labels (an integer map)."""
    ori_shape = tuple(sample.metainfo['ori_shape'][:2])
    if tuple(loss_map.shape) == ori_shape:
        return loss_map
    if not loss_map.is_floating_point():
        return F.interpolate(
            loss_map[None, None].float(), size=ori_shape,
            mode='nearest')[0, 0].to(loss_map.dtype)
    return F.interpolate(
        loss_map[None, None], size=ori_shape, mode='bilinear',
        align_corners=False)[0, 0]


@SAAL_ADAPTERS.register_module(name='EncoderDecoder')
class SegmentationSAAL:
    """Per-pixel SAAL loss maps of an mmseg ``EncoderDecoder``.

    The closure of an image is its decode head's per-pixel training loss
    (the head's own ``loss_decode`` terms, unreduced) against the argmax of
    its unperturbed prediction; the ascent step follows the mean over the
    image's pixels, so every image gets its own eps. Pixels of the padding
    never count. The auxiliary head plays no part in predictions and never
    moves. The stages outside ``perturb_scope`` run once per batch without
    autograd.

    Args:
        model (nn.Module): An mmseg ``EncoderDecoder``.
        perturb_scope (str | Sequence[str]): See
            :func:`~mmsaal.adapters.perturbed_parameters`; ``'head'`` is
            the decode head. Defaults to ``'head'``.
        score_resolution (float, optional): Score at this scale of the
            input (e.g. 0.5) and upsample the loss maps. Defaults to None.
        with_cp (bool, optional): Checkpoint the backbone's blocks while
            scoring when it moves (see
            :func:`~mmsaal.adapters.base.checkpointed_blocks`); None follows
            the blocks' own ``with_cp``.
    """

    #: ``SAALSampler`` fields that belong to this task.
    OPTIONS = ('score_resolution', )
    #: Whether :meth:`instance_losses` gives per-pixel maps.
    PIXEL_MAPS = True

    def __init__(self,
                 model: torch.nn.Module,
                 perturb_scope: PerturbScope = 'head',
                 score_resolution: Optional[float] = None,
                 with_cp: Optional[bool] = None) -> None:
        self.model = model
        named = [(n, p) for n, p in perturbed_parameters(model, perturb_scope)
                 if not n.startswith('auxiliary_head.')]
        if not named:
            raise ValueError(f'perturb_scope={perturb_scope!r} selects only '
                             f'auxiliary-head weights, which predictions '
                             f'never use')
        self.params = [p for _, p in named]
        self.stage = cached_stage(model, [n for n, _ in named])
        self.with_cp = with_cp
        if score_resolution is not None and not 0 < score_resolution <= 1:
            raise ValueError(f'score_resolution must lie in (0, 1], got '
                             f'{score_resolution}')
        self.score_resolution = score_resolution
        head = model.decode_head
        self.loss_terms = list(head.loss_decode) if isinstance(
            head.loss_decode, torch.nn.ModuleList) else [head.loss_decode]

    def _features(self, image: torch.Tensor, cache, index: int):
        if self.stage == 'none':
            return self.model.extract_feat(image)
        sliced = [level[index:index + 1] for level in cache]
        return sliced if self.stage == 'extract_feat' else self.model.neck(
            sliced)

    def pixel_losses(self, logits: torch.Tensor,
                     pseudo: torch.Tensor) -> torch.Tensor:
        """The decode head's unreduced loss of ``logits`` ``(1, C, H, W)``
        (already upsampled to the label size, as in mmseg's
        ``loss_by_feat``) against ``pseudo`` ``(1, H, W)``."""
        total = 0
        for term in self.loss_terms:
            losses = term(
                logits,
                pseudo,
                weight=None,
                ignore_index=IGNORE_INDEX,
                reduction_override='none')
            if losses.shape != pseudo.shape:
                raise TypeError(
                    f'{type(term).__name__} gives no per-pixel loss (shape '
                    f'{tuple(losses.shape)}); SAAL for segmentation needs '
                    f'pixel-wise loss terms such as CrossEntropyLoss')
            total = total + losses
        return total[0]

    def instance_losses(
            self,
            data_batch: dict,
            rho: float,
            mode: str,
            with_labels: bool = False,
            approximation: str = 'exact') -> List[Tuple[torch.Tensor, ...]]:
        """Per-pixel losses before and after the perturbation.

        Args:
            data_batch (dict): A collated pool batch (test pipeline).
            rho (float): Radius of the ascent step.
            mode (str): ``'adaptive'`` or ``'sam'``.
            with_labels (bool): Also return each image's pseudo-label (the
                argmax of its unperturbed prediction). Defaults to False.
            approximation (str): ``'exact'``, or ``'first_order'``: the
                image's mean losses only (scalars), L1 by its first-order
                value (:func:`~mmsaal.sharpness.first_order_loss`). Defaults
                to ``'exact'``.

        Returns:
            list[tuple[Tensor, ...]]: ``(L0, L1)`` maps of every image, each
            ``(H, W)`` at the image's original size, on CPU; with
            ``with_labels``, ``(L0, L1, pseudo-label)``, the label ``int64``
            (resized by nearest neighbour).
        """
        pair = loss_pair(approximation)
        if pair is not perturbed_loss and with_labels:
            raise ValueError(f'approximation={approximation!r} gives image '
                             f'losses, not maps to go with labels')
        with backbone_checkpointing(self.model, self.stage, self.with_cp):
            return self._instance_losses(data_batch, rho, mode, with_labels,
                                         pair)

    def _instance_losses(self, data_batch: dict, rho: float, mode: str,
                         with_labels: bool,
                         pair: Callable) -> List[Tuple[torch.Tensor, ...]]:
        results = []
        for sample, closure, pseudo, _ in self.image_closures(data_batch):
            maps = pair(closure, self.params, rho=rho, mode=mode)
            if maps[0].dim() == 0:  # first order: the image's scalars
                results.append(tuple(m.cpu() for m in maps))
                continue
            if with_labels:
                maps = (*maps, pseudo[0][0])
            results.append(
                tuple(to_original_size(m, sample).cpu() for m in maps))
        return results

    def image_closures(
            self, data_batch: dict, keep_logits: bool = False
    ) -> Iterator[Tuple[SegDataSample, Callable, list, list]]:
        """``(data sample, closure, pseudo-label, logits seen)`` of every
        image of a collated pool batch. The closure returns the image's
        per-pixel loss against the argmax of its first call's logits (the
        unperturbed prediction, when :func:`perturbed_loss` calls it), on
        the scored input, padding cut off; that argmax ``(1, H, W)`` is then
        the pseudo-label list's one entry. With ``keep_logits`` each call
        appends its logits, detached, to the last list (for diagnosis)."""
        data = self.model.data_preprocessor(data_batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        scale = self.score_resolution or 1.0
        if scale != 1.0:
            inputs = F.interpolate(
                inputs, scale_factor=scale, mode='bilinear',
                align_corners=False)
        with torch.no_grad():
            cache = compute_cached_stage(self.model, self.stage, inputs)
        for index, sample in enumerate(samples):
            image = inputs[index:index + 1]
            top, bottom, left, right = valid_box(sample, inputs.shape[2:],
                                                 scale)
            pseudo, seen = [], []

            def closure(image=image, index=index, box=(top, bottom, left,
                                                      right),
                        pseudo=pseudo, seen=seen):
                top, bottom, left, right = box
                logits = self.model.decode_head.forward(
                    self._features(image, cache, index))
                logits = resize(
                    logits,
                    size=inputs.shape[2:],
                    mode='bilinear',
                    align_corners=self.model.decode_head.align_corners)
                logits = logits[..., top:bottom, left:right]
                if not pseudo:  # the unperturbed prediction is the label
                    pseudo.append(logits.argmax(dim=1).detach())
                if keep_logits:
                    seen.append(logits.detach())
                return self.pixel_losses(logits, pseudo[0])

            yield sample, closure, pseudo, seen
