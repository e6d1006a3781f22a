# Copyright (c) mmsaal contributors. All rights reserved.
"""What SAAL's ascent step does to a segmentor's predictions.

Diagnosis of the score, image by image: how large the gradient and the step
are, how far the step moves the predictions (argmax flips, KL divergence,
entropy after the step), and how the loss change compares with the
first-order value of the step, ``rho * ||T g||`` (ASAM) or ``rho * ||g||``
(SAM).
"""
import math
from typing import Dict, List

import torch
import torch.nn.functional as F

from mmsaal.adapters.segmentation import SegmentationSAAL
from mmsaal.sharpness import ascent_step, perturbed_loss


def _norm(tensors) -> float:
    return float(
        torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(t) for t in tensors])))


def segmentation_step_effects(adapter: SegmentationSAAL, data_batch: dict,
                              rho: float, mode: str) -> List[Dict]:
    """One record per image of ``data_batch`` (a pool batch, model in eval
    mode), with the same loss, pseudo-label and step as the SAAL score.

    Returns:
        list[dict]: Per image: ``l0``, ``l1`` (mean pixel losses before and
        after), ``l0_pixels``, ``l1_pixels`` (the maps, flattened),
        ``grad_norm`` (``||g||`` of the mean pixel loss), ``scaled_grad_norm``
        (``||T g||``, ``T = |w|``), ``step_ratio`` (``||eps|| / ||w||``),
        ``max_relative_step`` (``max |eps| / |w|``), ``first_order`` (the
        first-order value of ``l1 - l0``), ``flipped`` (fraction of pixels
        whose argmax changes), ``kl`` (mean ``KL(p0 || p1)``), ``entropy_after``
        (mean entropy of ``p1``) and ``uniform_entropy`` (``ln C``).
    """
    params = adapter.params
    records = []
    for _, closure, _, logits_seen in adapter.image_closures(
            data_batch, keep_logits=True):
        with torch.enable_grad():
            grads = torch.autograd.grad(
                closure().mean(), params, allow_unused=True)
        grads = [
            torch.zeros_like(p) if g is None else g
            for p, g in zip(params, grads)
        ]
        eps = ascent_step(params, grads, rho, mode)
        before, after = perturbed_loss(closure, params, rho, mode)
        grad_norm = _norm(grads)
        scaled = _norm([g * p.abs() for g, p in zip(grads, params)])
        first_order = rho * (scaled if mode == 'adaptive' else grad_norm)
        p0 = F.log_softmax(logits_seen[1].float(), dim=1)
        p1 = F.log_softmax(logits_seen[2].float(), dim=1)
        kl = (p0.exp() * (p0 - p1)).sum(dim=1).mean()
        entropy_after = -(p1.exp() * p1).sum(dim=1).mean()
        records.append(
            dict(
                l0=float(before.mean()),
                l1=float(after.mean()),
                l0_pixels=before.flatten(),
                l1_pixels=after.flatten(),
                grad_norm=grad_norm,
                scaled_grad_norm=scaled,
                step_ratio=_norm(eps) / _norm([p.detach() for p in params]),
                max_relative_step=max(
                    float((e.abs() / p.detach().abs().clamp_min(1e-12)).max())
                    for e, p in zip(eps, params)),
                first_order=first_order,
                flipped=float((logits_seen[1].argmax(1) !=
                               logits_seen[2].argmax(1)).float().mean()),
                kl=float(kl),
                entropy_after=float(entropy_after),
                uniform_entropy=math.log(logits_seen[0].shape[1])))
    return records
