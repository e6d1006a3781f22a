# Copyright (c) mmsaal contributors. All rights reserved.
"""The procedure SAAL's classification code follows, applied to a detector
or segmentor as is: a deep copy of the model per image, a full forward and
backward, an in-place step, a full forward. It is the yardstick of the benchmark and the
tests, never used for scoring."""
import copy
from typing import List, Tuple

import torch

from mmsaal.adapters.base import instance_seed, seeded, sum_losses
from mmsaal.adapters.detection import pseudo_sample


def naive_detection_scores(model: torch.nn.Module,
                           data_batch: dict,
                           rho: float = 0.05,
                           mode: str = 'adaptive',
                           score_thr: float = 0.3,
                           max_pseudo_per_img: int = 100,
                           seed: int = 0) -> List[Tuple[float, float]]:
    """``(L0, L1)`` per image with every parameter perturbed."""
    data = model.data_preprocessor(data_batch, False)
    inputs, samples = data['inputs'], data['data_samples']
    results = []
    for index, sample in enumerate(samples):
        clone = copy.deepcopy(model)
        image = inputs[index:index + 1]
        with torch.no_grad():
            prediction = clone.predict(image, [sample], rescale=False)[0]
        pseudo = pseudo_sample(sample, prediction, score_thr,
                               max_pseudo_per_img)
        image_seed = instance_seed(seed, sample.img_path)
        with seeded(image_seed):
            before = sum_losses(clone.loss(image, [pseudo]))
        before.backward()
        params = [p for p in clone.parameters() if p.requires_grad]
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p)
            for p in params
        ]
        with torch.no_grad():
            _step(params, grads, rho, mode)
            with seeded(image_seed):
                after = sum_losses(clone.loss(image, [pseudo]))
        results.append((before.item(), after.item()))
    return results


def naive_segmentation_maps(model: torch.nn.Module,
                            data_batch: dict,
                            rho: float = 0.05,
                            mode: str = 'adaptive',
                            scope_prefixes: Tuple[str, ...] = ('', )
                            ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """``(L0, L1)`` per-pixel cross-entropy maps of an mmseg segmentor, each
    image on a deep copy whose parameters named by ``scope_prefixes`` move
    (all by default), computed without mmsaal's adapter or mmseg's losses.
    As the reference code, the pseudo-label comes from an inference pass of
    its own, before the loss's forward / backward / forward.
    """
    import torch.nn.functional as F
    data = model.data_preprocessor(data_batch, False)
    inputs, samples = data['inputs'], data['data_samples']
    results = []
    for index, sample in enumerate(samples):
        clone = copy.deepcopy(model)
        image = inputs[index:index + 1]
        left, right, top, bottom = sample.metainfo.get(
            'padding_size', (0, 0, 0, 0))
        height, width = image.shape[2:]

        def pixel_losses(pseudo=None):
            logits = clone.decode_head.forward(clone.extract_feat(image))
            logits = F.interpolate(
                logits, size=(height, width), mode='bilinear',
                align_corners=clone.decode_head.align_corners)
            logits = logits[..., top:height - bottom, left:width - right]
            if pseudo is None:
                pseudo = logits.argmax(dim=1).detach()
            return F.cross_entropy(logits, pseudo, reduction='none')[0], \
                pseudo

        with torch.no_grad():
            _, pseudo = pixel_losses()
        before, _ = pixel_losses(pseudo)
        before.mean().backward()
        params = [
            p for n, p in clone.named_parameters()
            if p.requires_grad and n.startswith(scope_prefixes)
            and not n.startswith('auxiliary_head.')
        ]
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p)
            for p in params
        ]
        with torch.no_grad():
            _step(params, grads, rho, mode)
            after, _ = pixel_losses(pseudo)
        ori_shape = tuple(sample.metainfo['ori_shape'][:2])
        results.append(tuple(
            F.interpolate(m.detach()[None, None], size=ori_shape,
                          mode='bilinear', align_corners=False)[0, 0]
            if tuple(m.shape) != ori_shape else m.detach()
            for m in (before, after)))
    return results


def _step(params, grads, rho: float, mode: str) -> None:
    """``w += eps`` as SAAL.md writes it, one parameter at a time."""
    if mode == 'adaptive':
        norm = torch.sqrt(
            sum(((p.abs() * g)**2).sum() for p, g in zip(params, grads)))
        for p, g in zip(params, grads):
            p.add_(rho * p.abs()**2 * g / (norm + 1e-12))
    else:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        for p, g in zip(params, grads):
            p.add_(rho * g / (norm + 1e-12))


def naive_classification_scores(model: torch.nn.Module,
                                data_batch: dict,
                                rho: float = 0.05,
                                mode: str = 'adaptive'
                                ) -> List[Tuple[float, float]]:
    """``(L0, L1)`` per image of an mmpretrain classifier by SAAL's
    reference procedure (``max_sharpness_acquisition_pseudo``), as
    ``shared/REFERENCES.md`` states it: in eval mode, one image at a time,
    the pseudo-label is the argmax of a first pass and L0 its
    cross-entropy; then a deep copy of the model, the mean cross-entropy
    of the image against that label back-propagated into every parameter,
    ``norm = || [ || |p| * p.grad ||_2 for every p ] ||_2``, ``scale = rho
    / (norm + 1e-12)``, ``p += p^2 * p.grad * scale`` (ASAM; SAM: ``p +=
    p.grad * scale`` with the plain gradient norm), and L1 the copy's
    cross-entropy."""
    import torch.nn.functional as F
    data = model.data_preprocessor(data_batch, False)
    inputs = data['inputs']
    was_training = model.training
    model.eval()
    results = []
    try:
        for index in range(inputs.shape[0]):
            image = inputs[index:index + 1]
            with torch.no_grad():
                logits = model(image, mode='tensor')
                pseudo = logits.argmax(dim=1)
                before = F.cross_entropy(logits, pseudo, reduction='none')
            clone = copy.deepcopy(model)
            loss = F.cross_entropy(clone(image, mode='tensor'), pseudo).mean()
            loss.backward()
            params = [p for p in clone.parameters()
                      if p.requires_grad and p.grad is not None]
            with torch.no_grad():
                if mode == 'adaptive':
                    norm = torch.norm(torch.stack(
                        [torch.norm(p.abs() * p.grad) for p in params]))
                else:
                    norm = torch.norm(torch.stack(
                        [torch.norm(p.grad) for p in params]))
                scale = rho / (norm + 1e-12)
                for p in params:
                    if mode == 'adaptive':
                        p.add_(p.pow(2) * p.grad * scale)
                    else:
                        p.add_(p.grad * scale)
                after = F.cross_entropy(clone(image, mode='tensor'), pseudo,
                                        reduction='none')
            results.append((before.item(), after.item()))
    finally:
        model.train(was_training)
    return results
