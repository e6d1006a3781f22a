# Copyright (c) mmsaal contributors. All rights reserved.
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.optim import OptimWrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmsaal.registry import OPTIM_WRAPPERS
from mmsaal.rounds.score import unwrap_model
from mmsaal.sharpness import ascent_step


@OPTIM_WRAPPERS.register_module()
class SAMOptimWrapper(OptimWrapper):
    """Train with SAM (Foret et al., 2021) or ASAM (Kwon et al., 2021).

    Each update takes the gradient ``g`` at ``w``, moves the weights to
    ``w + eps`` (:func:`mmsaal.sharpness.ascent_step`: ``rho * g / ||g||``,
    or ``rho * T^2 g / ||T g||`` with ``T = |w|`` when ``adaptive``), takes
    the gradient again there, puts ``w`` back and lets the optimizer step
    with that second gradient::

        optim_wrapper = dict(type='mmsaal.SAMOptimWrapper', rho=0.05,
                             adaptive=False, optimizer=dict(type='SGD', ...))

    **How it gets the second forward.** mmdet's and mmseg's ``train_step``
    (mmengine's ``BaseModel.train_step``) preprocess the batch and compute
    the loss inside ``optim_wrapper.optim_context(model)``, then call
    ``optim_wrapper.update_params(loss)``. Inside that context this wrapper
    keeps what the model's ``data_preprocessor`` returns (a forward hook),
    so ``update_params`` can run the loss again on the same batch, with no
    change to the model classes and no hook in the config.

    What ``OptimWrapper`` does is kept: ``clip_grad`` clips the gradient the
    optimizer steps with (the second one); with ``accumulative_counts=k``
    the ascent follows the gradient accumulated over the ``k`` batches and
    the second gradient is accumulated over the same ``k`` batches; the
    param schedulers act on the same optimizer.

    BatchNorm statistics are left as the first forward set them: the
    perturbed forward's updates of ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` are undone, as common SAM implementations do.

    Args:
        optimizer (Optimizer): As ``OptimWrapper``.
        rho (float): Radius of the ascent step. Defaults to 0.05.
        adaptive (bool): ASAM's scale-invariant step instead of SAM's.
            Defaults to False.
        **kwargs: ``OptimWrapper``'s other fields (``accumulative_counts``,
            ``clip_grad``).
    """

    def __init__(self, optimizer, rho: float = 0.05, adaptive: bool = False,
                 **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        if rho <= 0:
            raise ValueError(f'SAMOptimWrapper.rho must be > 0, got {rho}')
        self.rho = rho
        self.mode = 'adaptive' if adaptive else 'sam'
        self._model: Optional[nn.Module] = None
        # What the data preprocessor returned last, for update_params.
        self._last_batch = None
        # The preprocessed batches since the last update, with the factor
        # their loss was scaled by.
        self._batches: List[Tuple[dict, float]] = []

    @contextmanager
    def optim_context(self, model: nn.Module):
        inner = unwrap_model(model)
        preprocessor = getattr(inner, 'data_preprocessor', None)
        if not isinstance(preprocessor, nn.Module):
            raise TypeError(
                'SAMOptimWrapper reruns the loss on the batch that '
                f"{type(inner).__name__}.data_preprocessor returns; this "
                'model has no data_preprocessor module (an mmengine '
                'BaseModel has one).')
        self._model = model
        handle = preprocessor.register_forward_hook(self._keep_batch)
        try:
            with super().optim_context(model):
                yield
        finally:
            handle.remove()

    def _keep_batch(self, module, args, batch) -> None:
        self._last_batch = batch

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        if self._last_batch is None:
            raise RuntimeError(
                'SAMOptimWrapper.update_params needs the batch of the loss: '
                'compute it inside `with optim_wrapper.optim_context(model):` '
                '(as mmengine\'s BaseModel.train_step does).')
        # The factor scale_loss applies now, for this batch's second pass.
        factor = float(self.scale_loss(torch.ones(())))
        self._batches.append((self._last_batch, factor))
        self._last_batch = None
        self.backward(loss * factor)
        if self.should_update():
            self._sharpness_aware_gradient()
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def _sharpness_aware_gradient(self) -> None:
        """Replace ``.grad`` by the gradient at ``w + eps``."""
        params = [
            p for group in self.optimizer.param_groups
            for p in group['params'] if p.grad is not None
        ]
        batches, self._batches = self._batches, []
        model = self._model
        inner = unwrap_model(model)
        original = [p.detach().clone() for p in params]
        with torch.no_grad():
            eps = ascent_step(params, [p.grad for p in params], self.rho,
                              self.mode)
            torch._foreach_add_(params, eps)
        del eps
        for param in params:
            param.grad = None
        try:
            with batch_norm_statistics_kept(inner):
                for batch, factor in batches:
                    losses = model._run_forward(batch, mode='loss')
                    loss, _ = inner.parse_losses(losses)
                    (loss * factor).backward()
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, original)


@contextmanager
def batch_norm_statistics_kept(model: nn.Module):
    """Undo, on exit, what forward passes did to the BatchNorm statistics."""
    buffers = [
        buffer for module in model.modules()
        if isinstance(module, _BatchNorm) and module.track_running_stats
        for buffer in (module.running_mean, module.running_var,
                       module.num_batches_tracked) if buffer is not None
    ]
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)
