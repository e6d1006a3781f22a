# Copyright (c) mmsaal contributors. All rights reserved.
"""The SAAL perturbed loss, model-agnostic (no OpenMMLab imports).

See ``shared/SAAL.md``: for one instance with loss ``L(w)``, take the
gradient ``g = dL/dw`` of that instance alone, move the weights one ascent
step ``eps`` and evaluate the loss again with the same pseudo-label::

    adaptive (ASAM): eps = rho * w^2 * g / (||w * g||_2 + 1e-12)
    sam:             eps = rho * g       / (||g||_2     + 1e-12)

The norm is global over every perturbed tensor.
"""
from typing import Callable, List, Sequence, Tuple

import torch

PERTURBATION_MODES = ('adaptive', 'sam')
NORM_EPSILON = 1e-12


def ascent_step(params: Sequence[torch.Tensor],
                grads: Sequence[torch.Tensor],
                rho: float = 0.05,
                mode: str = 'adaptive') -> List[torch.Tensor]:
    """Compute the weight perturbation of one SAM/ASAM ascent step.

    Args:
        params (Sequence[Tensor]): The weights ``w`` to perturb.
        grads (Sequence[Tensor]): ``dL/dw`` for each tensor in ``params``.
        rho (float): Radius of the step. Defaults to 0.05.
        mode (str): ``'adaptive'`` (ASAM) or ``'sam'``. Defaults to
            ``'adaptive'``.

    Returns:
        list[Tensor]: ``eps``, one tensor per parameter.
    """
    return _scale_to_ascent_step_([g.clone() for g in grads], params, rho,
                                  mode)


def _scale_to_ascent_step_(grads: List[torch.Tensor],
                           params: Sequence[torch.Tensor], rho: float,
                           mode: str) -> List[torch.Tensor]:
    """Turn ``grads`` into ``eps`` in place (they are as large as the
    perturbed weights: no further copy of them is made)."""
    if mode not in PERTURBATION_MODES:
        raise ValueError(f'perturbation mode must be one of '
                         f'{PERTURBATION_MODES}, got {mode!r}')
    if mode == 'adaptive':
        magnitudes = torch._foreach_abs(params)
        torch._foreach_mul_(grads, magnitudes)
        norm = torch.linalg.vector_norm(
            torch.stack(torch._foreach_norm(grads)))
        # T^2 g with T = |w| is (|w| g) * |w|
        torch._foreach_mul_(grads, magnitudes)
        del magnitudes
    else:
        norm = torch.linalg.vector_norm(
            torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, rho / (norm + NORM_EPSILON))
    return grads


def _writable(grads: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """``grads`` as tensors that may be scaled in place: autograd can hand
    back expanded views, or one tensor for two parameters."""
    seen = set()
    writable = []
    for grad in grads:
        if not grad.is_contiguous() or grad.data_ptr() in seen:
            grad = grad.clone(memory_format=torch.contiguous_format)
        seen.add(grad.data_ptr())
        writable.append(grad)
    return writable


def perturbed_loss(closure: Callable[[], torch.Tensor],
                   params: Sequence[torch.Tensor],
                   rho: float = 0.05,
                   mode: str = 'adaptive'
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Loss of one instance before and after a one-step weight perturbation.

    The parameters are perturbed in place and restored bit for bit from a
    copy of the perturbed tensors only (no copy of the model). No ``.grad``
    is written: the gradient comes from :func:`torch.autograd.grad`.

    Args:
        closure (Callable[[], Tensor]): Returns the loss of ONE instance
            under the current weights: a scalar, or the losses of its
            elements (e.g. the pixels of an image), whose mean is the
            instance loss the ascent step follows. It is called twice and
            must use the same pseudo-label and random draws both times.
        params (Sequence[Tensor]): The tensors to perturb (leaf parameters
            that require grad).
        rho (float): Radius of the ascent step. Defaults to 0.05.
        mode (str): ``'adaptive'`` (ASAM, the reference default) or
            ``'sam'``. Defaults to ``'adaptive'``.

    Returns:
        tuple[Tensor, Tensor]: ``(loss_before, loss_after)``, detached, of
        the closure's shape.
    """
    params = list(params)
    if not params:
        raise ValueError('perturbed_loss needs at least one parameter')
    with torch.enable_grad():
        loss_before = closure()
        grads = torch.autograd.grad(
            loss_before.mean(), params, allow_unused=True)
    # A parameter the loss does not reach gets no step.
    grads = _writable([
        torch.zeros_like(p) if g is None else g
        for p, g in zip(params, grads)
    ])
    with torch.no_grad():
        eps = _scale_to_ascent_step_(grads, params, rho, mode)
        del grads
        original = [p.detach().clone() for p in params]
        try:
            torch._foreach_add_(params, eps)
            loss_after = closure()
        finally:
            torch._foreach_copy_(params, original)
    return loss_before.detach(), loss_after.detach()
