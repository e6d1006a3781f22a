# Copyright (c) mmsaal contributors. All rights reserved.
"""The SAAL perturbed loss, model-agnostic (no OpenMMLab imports).

See ``shared/SAAL.md``: for one instance with loss ``L(w)``, take the
gradient ``g = dL/dw`` of that instance alone, move the weights one ascent
step ``eps`` and evaluate the loss again with the same pseudo-label::

    adaptive (ASAM): eps = rho * w^2 * g / (||w * g||_2 + 1e-12)
    sam:             eps = rho * g       / (||g||_2     + 1e-12)

The norm is global over every perturbed tensor. To first order the step
raises the loss by ``g . eps = rho * ||T g||`` (``T = |w|`` for ASAM, the
identity for SAM): :func:`first_order_loss` gives that value without the
perturbed pass.
"""
from typing import Callable, List, Sequence, Tuple

import torch

PERTURBATION_MODES = ('adaptive', 'sam')
#: How the perturbed loss is computed: a second pass at ``w + eps``, or its
#: first-order value (see :func:`loss_pair`).
APPROXIMATIONS = ('exact', 'first_order')
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
    eps = [g.clone() for g in grads]
    scale = _direction_(eps, params, mode)
    if mode == 'adaptive':
        for step, param in zip(eps, params):
            step.mul_(param.abs())
    torch._foreach_mul_(eps, rho * scale)
    return eps


def _direction_(grads: List[torch.Tensor], params: Sequence[torch.Tensor],
                mode: str) -> float:
    """Scale ``grads`` in place by ``|w|`` (adaptive) and return
    ``1 / (||grads|| + 1e-12)``.

    One parameter at a time, so no buffer as large as all perturbed weights
    is made besides ``grads`` itself.
    """
    return float(1 / (_scaled_norm_(grads, params, mode) + NORM_EPSILON))


def _scaled_norm_(grads: List[torch.Tensor], params: Sequence[torch.Tensor],
                  mode: str) -> torch.Tensor:
    """Scale ``grads`` in place by ``|w|`` (adaptive) and return their
    global norm ``||T g||``."""
    if mode not in PERTURBATION_MODES:
        raise ValueError(f'perturbation mode must be one of '
                         f'{PERTURBATION_MODES}, got {mode!r}')
    if mode == 'adaptive':
        for grad, param in zip(grads, params):
            grad.mul_(param.abs())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


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
    loss_before, grads = _loss_and_gradient(closure, params)
    with torch.no_grad():
        scale = rho * _direction_(grads, params, mode)
        original = [p.detach().clone() for p in params]
        try:
            # w + eps, with eps = rho * T^2 g / ||T g|| and T = |w| (ASAM)
            # or eps = rho * g / ||g|| (SAM), written into w directly.
            if mode == 'adaptive':
                for param, scaled, weight in zip(params, grads, original):
                    param.addcmul_(scaled, weight.abs(), value=scale)
            else:
                torch._foreach_add_(params, grads, alpha=scale)
            del grads  # the perturbed pass should not hold them as well
            loss_after = closure()
        finally:
            torch._foreach_copy_(params, original)
    return loss_before.detach(), loss_after.detach()


def perturbed_losses(closures, params: Sequence[torch.Tensor],
                     rho: float = 0.05, mode: str = 'adaptive'
                     ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """:func:`perturbed_loss` of several instances, one after another, on
    the same weights: ``|w|`` and the copy the weights are restored from
    are made once for all of them instead of once each (for a model of
    millions of weights, as much time as its forward pass). Each instance
    gets its own gradient and step, and the weights are restored bit for
    bit after each.

    Args:
        closures (Iterable[Callable[[], Tensor]]): One per instance, as for
            :func:`perturbed_loss`.
        params, rho, mode: As for :func:`perturbed_loss`.

    Returns:
        list[tuple[Tensor, Tensor]]: ``(loss_before, loss_after)`` of each.
    """
    params = list(params)
    with torch.no_grad():
        original = [p.detach().clone() for p in params]
        magnitude = [w.abs() for w in original] if mode == 'adaptive' \
            else None
    results = []
    try:
        for closure in closures:
            loss_before, grads = _loss_and_gradient(closure, params)
            with torch.no_grad():
                if magnitude is not None:
                    torch._foreach_mul_(grads, magnitude)
                    norm = torch.linalg.vector_norm(
                        torch.stack(torch._foreach_norm(grads)))
                    scale = float(rho / (norm + NORM_EPSILON))
                    # w + rho * |w| (|w| g) / ||T g||, as perturbed_loss
                    for param, scaled, weight in zip(params, grads,
                                                     magnitude):
                        param.addcmul_(scaled, weight, value=scale)
                else:
                    scale = rho * _direction_(grads, params, mode)
                    torch._foreach_add_(params, grads, alpha=scale)
                del grads
                loss_after = closure()
                torch._foreach_copy_(params, original)
            results.append((loss_before.detach(), loss_after.detach()))
    finally:
        with torch.no_grad():
            torch._foreach_copy_(params, original)
    return results


def _loss_and_gradient(closure: Callable[[], torch.Tensor],
                       params: List[torch.Tensor]
                       ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """The closure's loss and the gradient of its mean, as writable
    tensors (zeros for a parameter the loss does not reach)."""
    if not params:
        raise ValueError('the ascent step needs at least one parameter')
    with torch.enable_grad():
        loss_before = closure()
        grads = torch.autograd.grad(
            loss_before.mean(), params, allow_unused=True)
    # A parameter the loss does not reach gets no step.
    return loss_before, _writable([
        torch.zeros_like(p) if g is None else g
        for p, g in zip(params, grads)
    ])


def first_order_loss(closure: Callable[[], torch.Tensor],
                     params: Sequence[torch.Tensor],
                     rho: float = 0.05,
                     mode: str = 'adaptive'
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The instance loss before the step and its first-order value after:
    ``L1 ~ L0 + g . eps = L0 + rho * ||T g||``, with no perturbed pass.

    Exact to first order in ``rho`` for the instance loss, the mean of the
    closure's elements, which the step follows. It says nothing about each
    element (a pixel's own change needs its own gradient), so both values
    are the instance's: scalars.

    Args:
        closure, params, rho, mode: As for :func:`perturbed_loss`.

    Returns:
        tuple[Tensor, Tensor]: ``(L0, L0 + rho * ||T g||)``, detached
        scalars.
    """
    params = list(params)
    loss_before, grads = _loss_and_gradient(closure, params)
    with torch.no_grad():
        rise = rho * _scaled_norm_(grads, params, mode)
        before = loss_before.detach().mean()
    return before, before + rise.to(before.dtype)


def loss_pair(approximation: str) -> Callable:
    """:func:`perturbed_loss` (``'exact'``) or :func:`first_order_loss`
    (``'first_order'``)."""
    if approximation not in APPROXIMATIONS:
        raise ValueError(f'approximation must be one of {APPROXIMATIONS}, '
                         f'got {approximation!r}')
    return perturbed_loss if approximation == 'exact' else first_order_loss


def batched_ascent_steps(params: Sequence[torch.Tensor],
                         grads: Sequence[torch.Tensor],
                         rho: float = 0.05,
                         mode: str = 'adaptive'
                         ) -> Tuple[List[torch.Tensor], torch.Tensor]:
    """:func:`ascent_step` for a batch of instances at once: each instance
    its own step from its own gradient.

    Args:
        params (Sequence[Tensor]): The weights ``w``, shared.
        grads (Sequence[Tensor]): Per-instance gradients, each ``(B,
            *w.shape)``.
        rho, mode: As for :func:`ascent_step`.

    Returns:
        tuple[list[Tensor], Tensor]: Each instance's ``eps`` (``(B,
        *w.shape)`` per parameter) and its ``||T g||`` ``(B,)`` (the
        first-order rise over ``rho``).
    """
    if mode not in PERTURBATION_MODES:
        raise ValueError(f'perturbation mode must be one of '
                         f'{PERTURBATION_MODES}, got {mode!r}')
    scaled = [g * p.abs() if mode == 'adaptive' else g
              for p, g in zip(params, grads)]
    norm = torch.stack([s.flatten(1).pow(2).sum(1)
                        for s in scaled]).sum(0).sqrt()
    factor = rho / (norm + NORM_EPSILON)
    eps = []
    for param, step in zip(params, scaled):
        shape = (-1, ) + (1, ) * param.dim()
        step = step * factor.view(shape)
        eps.append(step * param.abs() if mode == 'adaptive' else step)
    return eps, norm


def batched_perturbed_weights_(params: Sequence[torch.Tensor],
                               grads: Sequence[torch.Tensor],
                               rho: float = 0.05,
                               mode: str = 'adaptive') -> torch.Tensor:
    """Each instance's perturbed weights ``w + eps_i``, written over its
    gradient: :func:`batched_ascent_steps` and the sum, in place (the
    same numbers to float rounding: the norm is summed in another order).

    For a batch of per-instance gradients as large as the model times the
    batch, every new tensor of that size is a pass through memory and,
    freshly allocated, page faults as well; this makes none.

    Args:
        params (Sequence[Tensor]): The weights ``w``, shared.
        grads (Sequence[Tensor]): Per-instance gradients, each ``(B,
            *w.shape)``, writable; they become the perturbed weights.
        rho, mode: As for :func:`ascent_step`.

    Returns:
        Tensor: Each instance's ``||T g||`` ``(B,)``.
    """
    if mode not in PERTURBATION_MODES:
        raise ValueError(f'perturbation mode must be one of '
                         f'{PERTURBATION_MODES}, got {mode!r}')
    magnitudes = [p.detach().abs() if mode == 'adaptive' else None
                  for p in params]
    for grad, magnitude in zip(grads, magnitudes):
        if magnitude is not None:
            grad.mul_(magnitude)
    norm = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1)
                        for g in grads]).square().sum(0).sqrt()
    factor = rho / (norm + NORM_EPSILON)
    for param, grad, magnitude in zip(params, grads, magnitudes):
        grad.mul_(factor.view((-1, ) + (1, ) * param.dim()))
        if magnitude is not None:
            grad.mul_(magnitude)
        grad.add_(param.detach())
    return norm
