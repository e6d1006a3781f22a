# Copyright (c) mmsaal contributors. All rights reserved.
"""SAAL over MMPretrain image classifiers.

The reference scores one image per perturbation: copy the model, back-
propagate the image's loss, move every weight, forward again. Each image
keeps its own gradient and its own step here too, computed for a chunk of
images at once:

- when the backbone stays (``perturb_scope='head'``), its features come
  once per batch without autograd, and the head's per-image gradients and
  perturbed passes run for a chunk of images at once: ``vmap`` over
  ``grad`` and over ``functional_call`` with each image's weights
  (``torch.func``), in chunks that bound the memory of per-image weights;
- when the backbone moves (``'all'``, the reference's scope) and
  ``per_sample='batched'``, the images' own gradients come from one
  batched forward and backward of the chunk
  (:func:`~mmsaal.per_sample.per_sample_gradients`, into buffers reused
  from chunk to chunk), each is turned into its image's perturbed weights
  in place, and one forward runs every image under its own weights
  (:func:`~mmsaal.per_sample.forward_with_per_sample_weights`); to first
  order only each image's ``||T g||`` is needed
  (:func:`~mmsaal.per_sample.per_sample_norms`), for the whole batch at
  once. By default (``'per_image'``) one image at a time
  (:func:`~mmsaal.perturbed_loss` moves the weights in place and restores
  them), as also for a model with a layer whose per-sample gradients are
  not computed batched.
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmpretrain.models import ImageClassifier
from torch.func import functional_call, grad_and_value, vmap

from mmsaal.per_sample import (Unsupported, forward_with_per_sample_weights,
                               per_sample_gradients, per_sample_norms)
from mmsaal.registry import SAAL_ADAPTERS
from mmsaal.sharpness import (APPROXIMATIONS, PERTURBATION_MODES,
                              batched_ascent_steps,
                              batched_perturbed_weights_, loss_pair,
                              perturbed_losses)
from .base import PerturbScope, cached_stage, perturbed_parameters

#: A chunk of images holds at most a third of these bytes of per-image
#: gradients (``'all'``: one reused buffer, which then holds the images'
#: perturbed weights; ``'head'``: gradients, steps and weights).
CHUNK_BYTES = 512 * 2**20
#: How ``perturb_scope='all'`` gets each image's gradient and perturbed
#: loss: batched (one backward and one forward under per-image weights a
#: chunk), or one image at a time.
PER_SAMPLE = ('batched', 'per_image')


class _Tail(torch.nn.Module):
    """What turns a cached stage's output into logits: the neck (when it
    moves) and the head, under the classifier's own parameter names."""

    def __init__(self, model: ImageClassifier, with_neck: bool) -> None:
        super().__init__()
        if with_neck:
            self.neck = model.neck
        self.head = model.head

    def forward(self, feats):
        if hasattr(self, 'neck'):
            feats = self.neck(feats)
        return self.head(feats)


@SAAL_ADAPTERS.register_module(name='ImageClassifier')
class ClassificationSAAL:
    """Per-image SAAL losses of an mmpretrain ``ImageClassifier``.

    An image's loss is its head's own loss (``head.loss_module``, the
    cross-entropy of a ``LinearClsHead``) against the argmax of its
    unperturbed logits; its ascent step follows its own gradient
    (``shared/SAAL.md``), in eval mode (BatchNorm on running statistics).
    With ``perturb_scope='all'`` this is the reference's procedure; with
    ``'head'`` only the head moves and the backbone runs once.

    Args:
        model (ImageClassifier): The classifier.
        perturb_scope (str | Sequence[str]): See
            :func:`~mmsaal.adapters.perturbed_parameters`; ``'head'`` is
            the classification head. Defaults to ``'head'``.
        with_cp (bool, optional): Unused (the chunks bound memory
            instead); accepted for the common adapter interface.
        per_sample (str): With the backbone moving: ``'per_image'`` (one
            image at a time, the weights moved in place) or ``'batched'``
            (each image's gradient from one backward of its chunk, the
            perturbed passes of a chunk at once; to first order, the
            norms of the whole batch's gradients from one backward). The
            same scores to float rounding. ``tools/benchmark_scoring.py``
            (``saal_all`` against ``batched_all``, ``first_order_all``
            against ``batched_first_order_all``) says which pays on a
            machine; the measured tables are in the docs' benchmarks.
            Defaults to ``'per_image'``.
    """

    OPTIONS = ('per_sample', )
    PIXEL_MAPS = False

    def __init__(self,
                 model: ImageClassifier,
                 perturb_scope: PerturbScope = 'head',
                 with_cp: Optional[bool] = None,
                 per_sample: str = 'per_image') -> None:
        if per_sample not in PER_SAMPLE:
            raise ValueError(f'SAALSampler.per_sample must be one of '
                             f'{PER_SAMPLE}, got {per_sample!r}')
        self.per_sample = per_sample
        self.model = model
        named = perturbed_parameters(model, perturb_scope)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.stage = cached_stage(model, self.names)
        if self.stage == 'none':
            self.net = model
        else:
            self.net = _Tail(model, with_neck=self.stage == 'backbone'
                             and getattr(model, 'neck', None) is not None)
        moving = set(self.names)
        self.fixed = {
            n: t.detach()
            for n, t in list(self.net.named_parameters()) +
            list(self.net.named_buffers()) if n not in moving
        }
        per_image = sum(p.numel() * p.element_size() for p in self.params)
        self.chunk = max(1, CHUNK_BYTES // (3 * per_image))
        self._buffers: Optional[List[torch.Tensor]] = None

    def _logits(self, weights: Dict[str, torch.Tensor], inputs):
        """Logits of one image (inputs with a batch of one)."""
        state = dict(self.fixed, **weights)
        if self.stage == 'none':
            return functional_call(self.net, state, (inputs, ),
                                   dict(mode='tensor'))
        return functional_call(self.net, state, (inputs, ))

    def _loss(self, weights, inputs, label):
        logits = self._logits(weights, _one(inputs))
        loss = self.model.head.loss_module(
            logits, label.view(1), reduction_override='none')
        return loss.sum()

    def instance_losses(self, data_batch: dict, rho: float, mode: str,
                        approximation: str = 'exact'
                        ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Each image's loss before and after its perturbation.

        Args:
            data_batch (dict): A collated pool batch (test pipeline).
            rho (float): Radius of the ascent step.
            mode (str): ``'adaptive'`` or ``'sam'``.
            approximation (str): ``'exact'``, or ``'first_order'``: L1 by
                its first-order value ``L0 + rho * ||T g||``. Defaults to
                ``'exact'``.

        Returns:
            list[tuple[Tensor, Tensor]]: ``(L0, L1)`` scalars per image, on
            CPU.
        """
        if approximation not in APPROXIMATIONS:
            raise ValueError(f'approximation must be one of '
                             f'{APPROXIMATIONS}, got {approximation!r}')
        data = self.model.data_preprocessor(data_batch, False)
        inputs = data['inputs']
        if self.stage == 'none':
            if self.per_sample == 'batched':
                try:
                    return self._all_batched(inputs, rho, mode,
                                             approximation)
                except Unsupported:
                    pass  # a layer without batched per-sample gradients
            return self._one_at_a_time(inputs, rho, mode, approximation)
        with torch.no_grad():
            if self.stage == 'extract_feat':
                inputs = self.model.extract_feat(inputs)
            else:
                inputs = self.model.backbone(inputs)
        weights = {n: p.detach() for n, p in zip(self.names, self.params)}
        results = []
        size = _batch_size(inputs)
        for start in range(0, size, self.chunk):
            chunk = _rows(inputs, start, start + self.chunk)
            with torch.no_grad():
                logits = vmap(lambda x: self._logits(weights, _one(x))[0])(
                    chunk)
                labels = logits.argmax(dim=1)
            grads, before = vmap(grad_and_value(self._loss),
                                 in_dims=(None, 0, 0))(weights, chunk, labels)
            results += self._perturbed(weights, [grads[n] for n in
                                                 self.names], before, chunk,
                                       labels, rho, mode, approximation)
        return results

    def _perturbed(self, weights: Dict[str, torch.Tensor],
                   grads: List[torch.Tensor], before: torch.Tensor, chunk,
                   labels: torch.Tensor, rho: float, mode: str,
                   approximation: str
                   ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``(L0, L1)`` of a chunk from its images' own gradients: each
        image's step, then every image's loss at its own weights at once
        (or, to first order, ``L0 + rho * ||T g||``)."""
        with torch.no_grad():
            eps, norm = batched_ascent_steps(self.params, grads, rho, mode)
            del grads
            if approximation == 'first_order':
                after = before + rho * norm
            else:
                moved = {n: w + e for (n, w), e in zip(weights.items(),
                                                       eps)}
                del eps
                after = vmap(self._loss, in_dims=(0, 0, 0))(moved, chunk,
                                                            labels)
        return [(b.detach().cpu(), a.detach().cpu())
                for b, a in zip(before, after)]

    def _all_batched(self, inputs: torch.Tensor, rho: float, mode: str,
                     approximation: str
                     ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Each image's ``(L0, L1)`` with the whole model moving: their
        losses against their own argmax and their own gradients from one
        forward and one backward, a chunk of images at a time, then every
        image of the chunk under its own perturbed weights in one forward
        (or, to first order, the norms of the gradients, the whole batch
        at once)."""
        loss_module = self.model.head.loss_module
        kept = {}

        def losses_of(images):
            def losses():
                logits = self.model(images, mode='tensor')
                kept['labels'] = logits.argmax(dim=1).detach()
                loss = loss_module(logits, kept['labels'],
                                   reduction_override='none')
                kept['loss'] = loss.detach()
                return loss

            return losses

        if mode not in PERTURBATION_MODES:
            raise ValueError(f'perturbation mode must be one of '
                             f'{PERTURBATION_MODES}, got {mode!r}')
        if approximation == 'first_order':
            # Only the norms: no image's gradient is held as a whole, so
            # the batch goes at once.
            scales = [p.abs() for p in self.params] \
                if mode == 'adaptive' else None
            before, norm = per_sample_norms(self.model, self.params,
                                            losses_of(inputs), scales)
            after = before + rho * norm
            return [(b.cpu(), a.cpu()) for b, a in zip(before, after)]
        results = []
        for start in range(0, inputs.shape[0], self.chunk):
            chunk = inputs[start:start + self.chunk]
            grads = per_sample_gradients(self.model, self.params,
                                         losses_of(chunk),
                                         out=self._gradient_buffers())
            with torch.no_grad():
                # Each image's w + eps, written over its own gradient.
                batched_perturbed_weights_(self.params, grads, rho, mode)
                logits = forward_with_per_sample_weights(
                    self.model, self.params, grads,
                    lambda: self.model(chunk, mode='tensor'))
                after = loss_module(logits, kept['labels'],
                                    reduction_override='none')
            results += [(b.cpu(), a.cpu())
                        for b, a in zip(kept['loss'], after)]
        return results

    def _gradient_buffers(self) -> List[torch.Tensor]:
        """A chunk's per-image gradients, then its perturbed weights: made
        once and reused by every chunk (see
        :func:`~mmsaal.per_sample.per_sample_gradients`' ``out``)."""
        if self._buffers is None:
            self._buffers = [p.new_empty((self.chunk, ) + tuple(p.shape))
                             for p in self.params]
        return self._buffers

    def _one_at_a_time(self, inputs: torch.Tensor, rho: float, mode: str,
                       approximation: str
                       ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Each image's ``(L0, L1)`` with the whole model moving: the head's
        loss against the argmax of the image's own unperturbed logits."""
        def closure(index: int):
            image, label = inputs[index:index + 1], []

            def loss():
                logits = self.model(image, mode='tensor')
                if not label:  # the unperturbed prediction is the label
                    label.append(logits.argmax(dim=1).detach())
                return self.model.head.loss_module(
                    logits, label[0], reduction_override='none').sum()

            return loss

        closures = (closure(i) for i in range(inputs.shape[0]))
        if approximation == 'exact':
            pairs = perturbed_losses(closures, self.params, rho, mode)
        else:
            pair = loss_pair(approximation)
            pairs = [pair(c, self.params, rho=rho, mode=mode)
                     for c in closures]
        return [(before.cpu(), after.cpu()) for before, after in pairs]


def _one(inputs):
    """An image (or its features) as a batch of one."""
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(x.unsqueeze(0) for x in inputs)
    return inputs.unsqueeze(0)


def _batch_size(inputs) -> int:
    return (inputs[0] if isinstance(inputs, (tuple, list)) else inputs).shape[0]


def _rows(inputs, start: int, end: int):
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(x[start:end] for x in inputs)
    return inputs[start:end]
