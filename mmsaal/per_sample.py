# Copyright (c) mmsaal contributors. All rights reserved.
"""Per-sample gradients of a batch from one batched backward (no
OpenMMLab imports).

SAAL needs each image's own gradient ``g_i = dL_i/dw``. One image at a
time that is a backward per image; here one forward and one backward of
the whole batch give them all, as Opacus's ``GradSampleModule`` does: each
layer that owns a perturbed parameter keeps its input ``a`` during the
forward pass, the backward pass gives the gradient ``b`` of the summed
loss at its output, and because image ``i``'s loss depends on image
``i``'s activations alone, ``b_i`` is ``dL_i`` at that layer's output.
Then, per layer:

- ``Linear``: ``g_i(W) = b_i^T a_i`` (summed over any middle dims), ``g_i(bias) = sum b_i``;
- ``Conv2d``: ``g_i(W) = b_i U(a_i)^T``, ``U`` the unfolded input patches,
  per group;
- BatchNorm in eval mode (running statistics, as SAAL scores):
  ``g_i(gamma) = sum b_i * x_hat_i``, ``g_i(beta) = sum b_i``.

That holds only while no layer mixes the images of a batch: BatchNorm in
training mode does, and is refused. A perturbed parameter owned by any
other kind of module raises :class:`Unsupported`, so the caller can go one
image at a time instead.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

#: The layer kinds whose per-sample gradients are computed here.
SUPPORTED = (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)


class Unsupported(TypeError):
    """A perturbed parameter lives in a layer this module cannot give
    per-sample gradients for."""


def per_sample_gradients(model: nn.Module, params: Sequence[torch.Tensor],
                         losses: Callable[[], torch.Tensor]
                         ) -> List[torch.Tensor]:
    """Each sample's gradient of its own loss, for every tensor of
    ``params``.

    Args:
        model (nn.Module): Owns ``params``; every module that holds one of
            them directly must be one of :data:`SUPPORTED`.
        params (Sequence[Tensor]): The parameters to differentiate.
        losses (Callable[[], Tensor]): Runs the forward pass of the batch
            through ``model`` and returns one loss per sample, shape
            ``(B,)``; sample ``i``'s loss may depend on sample ``i`` only.

    Returns:
        list[Tensor]: Per parameter, the gradients ``(B, *param.shape)``.

    Raises:
        Unsupported: A parameter's layer is not supported.
    """
    owners = _owners(model, params)
    records: List[Tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def keep(module, inputs, output):
        # The layer's output is handed on as a copy: a later in-place op
        # (ReLU(inplace=True), a residual +=) then changes the copy, not
        # the tensor whose gradient is asked for. The input is copied too,
        # in case a later in-place op changes it.
        records.append((module, inputs[0].detach().clone(), output))
        return output.clone()

    handles = [m.register_forward_hook(keep) for m in {id(m): m for m, _
                                                       in owners.values()}
               .values()]
    try:
        with torch.enable_grad():
            loss = losses()
    finally:
        for handle in handles:
            handle.remove()
    if loss.dim() != 1:
        raise ValueError(f'losses() must return one loss per sample, got '
                         f'shape {tuple(loss.shape)}')
    outputs = [output for _, _, output in records]
    grads_out = torch.autograd.grad(loss.sum(), outputs, allow_unused=True)
    found: Dict[int, torch.Tensor] = {}
    for (module, a, _), b in zip(records, grads_out):
        if b is None:
            continue
        for name, g in _layer_grads(module, a, b.detach()).items():
            key = id(getattr(module, name))
            found[key] = found[key] + g if key in found else g
    size = loss.shape[0]
    return [found.get(id(p), p.new_zeros((size, ) + tuple(p.shape)))
            for p in params]


def _owners(model: nn.Module, params: Sequence[torch.Tensor]
            ) -> Dict[int, Tuple[nn.Module, str]]:
    """``{id(param): (module, attribute)}``, checking each module kind."""
    wanted = {id(p) for p in params}
    owners = {}
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in wanted:
                continue
            if not isinstance(module, SUPPORTED):
                raise Unsupported(
                    f'per-sample gradients of a {type(module).__name__} '
                    f'are not computed batched')
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
                    module.training or not module.track_running_stats):
                raise Unsupported('BatchNorm in training mode mixes the '
                                  'samples of a batch')
            if isinstance(module, nn.Conv2d) and (
                    module.padding_mode != 'zeros'
                    or isinstance(module.padding, str)):
                raise Unsupported(f'Conv2d padding {module.padding!r} / '
                                  f'{module.padding_mode!r}')
            owners[id(param)] = (module, name)
    missing = wanted - set(owners)
    if missing:
        raise Unsupported(f'{len(missing)} parameters are not in the model')
    return owners


def _layer_grads(module: nn.Module, a: torch.Tensor,
                 b: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per-sample gradients of ``module``'s own parameters from its input
    ``a`` and the gradient ``b`` at its output."""
    out = {}
    if isinstance(module, nn.Linear):
        if a.dim() == 2:
            out['weight'] = torch.einsum('bo,bi->boi', b, a)
        else:
            out['weight'] = torch.einsum('bso,bsi->boi',
                                         b.flatten(1, -2), a.flatten(1, -2))
        if module.bias is not None:
            out['bias'] = b.flatten(1, -2).sum(1) if b.dim() > 2 else b
    elif isinstance(module, nn.Conv2d):
        size, groups = a.shape[0], module.groups
        patches = F.unfold(a, module.kernel_size, module.dilation,
                           module.padding, module.stride)
        patches = patches.view(size, groups, -1, patches.shape[-1])
        grad = b.reshape(size, groups, -1, patches.shape[-1])
        weight = torch.einsum('bgol,bgil->bgoi', grad, patches)
        out['weight'] = weight.reshape((size, ) + tuple(module.weight.shape))
        if module.bias is not None:
            out['bias'] = b.sum(dim=(2, 3))
    else:  # BatchNorm in eval mode
        shape = (1, -1) + (1, ) * (a.dim() - 2)
        x_hat = (a - module.running_mean.view(shape)) * torch.rsqrt(
            module.running_var.view(shape) + module.eps)
        dims = tuple(range(2, a.dim()))
        if module.weight is not None:
            out['weight'] = (b * x_hat).sum(dim=dims) if dims else b * x_hat
        if module.bias is not None:
            out['bias'] = b.sum(dim=dims) if dims else b
    return out
