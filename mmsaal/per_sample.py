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
  per group (or, where there are many output positions, the weight
  gradient of a grouped convolution with one group a sample);
- BatchNorm in eval mode (running statistics, as SAAL scores):
  ``g_i(gamma) = sum b_i * x_hat_i``, ``g_i(beta) = sum b_i``.

SAAL's first-order score needs only each sample's ``||T g_i||``:
:func:`per_sample_norms` reduces each layer's per-sample gradients block by
block as they are made, and never holds them as a whole.

That holds only while no layer mixes the images of a batch: BatchNorm in
training mode does, and is refused. A perturbed parameter owned by any
other kind of module raises :class:`Unsupported`, so the caller can go one
image at a time instead.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import get_gradient_edge

#: The layer kinds whose per-sample gradients are computed here.
SUPPORTED = (nn.Linear, nn.Conv2d, nn.modules.batchnorm._BatchNorm)
#: Bytes of per-sample gradients :func:`per_sample_norms` makes at once: a
#: block that stays in the CPU's cache while it is reduced (on a 2-core
#: AMD EPYC, ResNet-18's per-sample norms took 5.3x inference with blocks
#: of 4 MB against 6.7x with a layer's whole gradients at once).
BLOCK_BYTES = 4 * 2**20
#: Output positions per output channel of a group above which a
#: convolution's per-sample weights go through a grouped convolution (one
#: group a sample), at or below which through its unfolded input: see
#: :func:`_many_positions`.
POSITIONS_PER_CHANNEL = 2


class Unsupported(TypeError):
    """A perturbed parameter lives in a layer this module cannot give
    per-sample gradients for."""


def per_sample_gradients(model: nn.Module, params: Sequence[torch.Tensor],
                         losses: Callable[[], torch.Tensor],
                         out: Optional[Sequence[torch.Tensor]] = None
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
        out (Sequence[Tensor], optional): Per parameter, a contiguous
            tensor of at least ``B`` rows of its shape to write the
            gradients into. Reused from batch to batch, it spares each
            batch a fresh allocation as large as the model times the
            batch, whose first touch (page faults) cost more than the
            products written into it (a 37 MB block: 24 ms to allocate and
            fill, 2 ms to scale in place, on a 2-core CPU). Defaults to
            None (new tensors).

    Returns:
        list[Tensor]: Per parameter, the gradients ``(B, *param.shape)``
        (views of ``out``'s first ``B`` rows where given).

    Raises:
        Unsupported: A parameter's layer is not supported.
    """
    loss, layers = layer_inputs_and_grads(model, params, losses)
    size = loss.shape[0]
    into = {} if out is None else {
        id(p): buffer[:size] for p, buffer in zip(params, out)}
    found: Dict[int, torch.Tensor] = {}
    for module, a, b in layers:
        names = ('weight', 'bias')
        keys = {name: id(getattr(module, name)) for name in names
                if getattr(module, name, None) is not None}
        # A layer run twice adds its second call's gradients.
        targets = {name: into[key] for name, key in keys.items()
                   if key in into and key not in found}
        for name, g in _layer_grads(module, a, b, targets).items():
            key = keys[name]
            if key not in found:
                found[key] = g
            elif key in into:
                found[key].add_(g)
            else:
                found[key] = found[key] + g
    result = []
    for p in params:
        if id(p) in found:
            result.append(found[id(p)])
        elif id(p) in into:
            result.append(into[id(p)].zero_())
        else:
            result.append(p.new_zeros((size, ) + tuple(p.shape)))
    return result


def per_sample_norms(model: nn.Module, params: Sequence[torch.Tensor],
                     losses: Callable[[], torch.Tensor],
                     scales: Optional[Sequence[torch.Tensor]] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Each sample's loss and the norm of its own gradient, ``||T g_i||``
    over all of ``params``, without holding the per-sample gradients.

    Layer by layer, a block of at most :data:`BLOCK_BYTES` of per-sample
    gradients is made and reduced at once, so the gradients never go out
    to memory as a whole (for ResNet-18 they are 45 MB an image); where a
    layer's gradient is an outer product (a ``Linear`` on vectors, a
    convolution with one output position) the weighted norm comes from a
    matrix product without forming it: ``||T ⊙ b a^T||^2 = (b^2)^T T^2
    (a^2)``.

    Args:
        model, params, losses: As for :func:`per_sample_gradients`.
        scales (Sequence[Tensor], optional): ``T``, one tensor per
            parameter, its shape (``|w|`` for ASAM's norm); None: the
            plain norm ``||g_i||`` (SAM's).

    Returns:
        tuple[Tensor, Tensor]: The losses ``(B,)``, detached, and the
        norms ``(B,)``.

    Raises:
        Unsupported: A parameter's layer is not supported.
    """
    loss, layers = layer_inputs_and_grads(model, params, losses)
    if not layers:  # no parameter reached the losses
        return loss.detach(), loss.new_zeros(loss.shape[0]).detach()
    return loss.detach(), square_norms(layers, params, scales).sqrt()


def square_norms(layers: Sequence[Tuple[nn.Module, torch.Tensor,
                                        torch.Tensor]],
                 params: Sequence[torch.Tensor],
                 scales: Optional[Sequence[torch.Tensor]] = None
                 ) -> torch.Tensor:
    """Each sample's ``||T g_i||^2`` over those of ``params`` that the
    ``layers`` own, from their calls' inputs and output gradients (as
    :func:`layer_inputs_and_grads` gives them): the second half of
    :func:`per_sample_norms`. ``layers`` is not empty, and a layer called
    twice has both of its calls in it."""
    scale_of = {id(p): (None if scales is None else s.detach())
                for p, s in zip(params, scales or [None] * len(params))}
    calls: Dict[nn.Module, int] = {}
    for module, _, _ in layers:
        calls[module] = calls.get(module, 0) + 1
    total = layers[0][1].new_zeros(layers[0][1].shape[0])
    shared: Dict[int, torch.Tensor] = {}
    for module, a, b in layers:
        own = {name: scale_of[id(getattr(module, name))]
               for name in ('weight', 'bias')
               if getattr(module, name, None) is not None
               and id(getattr(module, name)) in scale_of}
        if calls[module] > 1:  # a layer run twice: sum before squaring
            for name, g in _layer_grads(module, a, b).items():
                if name in own:
                    key = id(getattr(module, name))
                    shared[key] = shared[key] + g if key in shared else g
            continue
        total += _layer_square_norms(module, a, b, own)
    for key, g in shared.items():
        total += _weighted_square_sum(g, scale_of[key])
    return total


def layer_inputs_and_grads(model: nn.Module,
                           params: Sequence[torch.Tensor],
                           losses: Callable[[], torch.Tensor]
                           ) -> Tuple[torch.Tensor, List[Tuple[
                               nn.Module, torch.Tensor, torch.Tensor]]]:
    """One forward and one backward of the batch: the per-sample losses
    and, for every call of a layer that owns one of ``params``, its input
    ``a`` and the gradient ``b`` of the summed losses at its output (the
    first half of :func:`per_sample_gradients` and
    :func:`per_sample_norms`).

    A layer's input is kept as it is, not copied (a copy of every
    activation cost ResNet-18 a sixth of its per-sample norms): a later
    in-place change of one (its version counter says so) would make its
    gradients wrong, and raises :class:`Unsupported` (autograd refuses to
    train such a model too: the layer saved that input). Nor is its output
    copied: the gradient is asked at the output's gradient edge as the
    layer made it, which a later in-place op (ReLU(inplace=True), a
    residual ``+=``) does not move: no copy of every output to be changed
    in its place, and no node in the graph to make each copy.
    """
    owners = _owners(model, params)
    records: List[tuple] = []

    def keep(module, inputs, output):
        a = inputs[0].detach()
        records.append((module, a, a._version, get_gradient_edge(output)))

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
    for module, a, version, _ in records:
        if a._version != version:
            raise Unsupported(f'the input of a {type(module).__name__} '
                              f'was changed in place after it ran')
    edges = [edge for _, _, _, edge in records]
    grads_out = torch.autograd.grad(loss.sum(), edges, allow_unused=True)
    return loss, [(module, a, b.detach())
                  for (module, a, _, _), b in zip(records, grads_out)
                  if b is not None]


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
            if id(param) in owners:
                raise Unsupported('a parameter shared by two layers')
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


def _layer_grads(module: nn.Module, a: torch.Tensor, b: torch.Tensor,
                 into: Optional[Dict[str, torch.Tensor]] = None
                 ) -> Dict[str, torch.Tensor]:
    """Per-sample gradients of ``module``'s own parameters from its input
    ``a`` and the gradient ``b`` at its output, written into ``into``'s
    tensors ``(B, *param.shape)`` where it names the parameter."""
    into = into or {}
    size = a.shape[0]

    def product(name, x, y, shape):
        """``bmm(x, y)`` as ``name``'s per-sample gradients."""
        if name not in into:
            return torch.bmm(x, y).view((size, ) + shape)
        torch.bmm(x, y, out=into[name].view((x.shape[0], x.shape[1],
                                             y.shape[2])))
        return into[name]

    def put(name, value):
        if name not in into:
            return value
        return into[name].copy_(value.view(into[name].shape))

    out = {}
    if isinstance(module, nn.Linear):
        shape = tuple(module.weight.shape)
        if a.dim() == 2:
            out['weight'] = product('weight', b[:, :, None], a[:, None],
                                    shape)
        else:
            out['weight'] = product('weight',
                                    b.flatten(1, -2).transpose(1, 2),
                                    a.flatten(1, -2), shape)
        if module.bias is not None:
            out['bias'] = put('bias', b.flatten(1, -2).sum(1)
                              if b.dim() > 2 else b)
    elif isinstance(module, nn.Conv2d):
        shape = tuple(module.weight.shape)
        if _many_positions(module, b.shape[2] * b.shape[3], b.shape[1]):
            out['weight'] = put('weight', _conv_weight_grads(module, a, b))
        else:
            grad, patches = _conv_operands(module, a, b)
            out['weight'] = product('weight', grad.flatten(0, 1),
                                    patches.flatten(0, 1).transpose(1, 2),
                                    shape)
        if module.bias is not None:
            out['bias'] = put('bias', b.sum(dim=(2, 3)))
    else:  # BatchNorm in eval mode
        # sum b * x_hat = (sum b * a - mean * sum b) / sqrt(var + eps): one
        # batched dot product over the positions, no x_hat.
        flat_a, flat_b = a.reshape(-1, 1, a[0, 0].numel()), \
            b.reshape(-1, 1, b[0, 0].numel())
        summed = flat_b.sum(2).view(size, -1)
        if module.weight is not None:
            dot = torch.bmm(flat_b, flat_a.transpose(1, 2)).view(size, -1)
            out['weight'] = put('weight', (dot - module.running_mean *
                                           summed) * torch.rsqrt(
                                               module.running_var +
                                               module.eps))
        if module.bias is not None:
            out['bias'] = put('bias', summed)
    return out


def _many_positions(module: nn.Conv2d, positions: int,
                    channels: int) -> bool:
    """Whether a convolution with ``positions`` output positions and
    ``channels`` output channels has more than
    :data:`POSITIONS_PER_CHANNEL` positions for each output channel of a
    group: its per-sample weight gradients (and its forward under
    per-sample weights) are then cheaper as a grouped convolution (one
    group a sample) than through its unfolded input, the larger tensor
    there. On a 2-core CPU: ResNet-18 at 32x32's first stage, 1,024
    positions for 64 channels, took 18 ms against 56 ms for 25 images; its
    second, 256 for 128, was faster unfolded; the digits classifier's 8x8
    stage, 64 positions for 16 channels, took 0.29-0.32x inference grouped
    against 0.47-0.62x unfolded (norms of 100 images)."""
    return positions > POSITIONS_PER_CHANNEL * (channels // module.groups)


def _conv_weight_grads(module: nn.Conv2d, a: torch.Tensor,
                       b: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients ``(B, *weight.shape)`` of a convolution:
    the weight gradient of the same convolution with the samples stacked
    as groups."""
    size, shape = a.shape[0], tuple(module.weight.shape)
    grads = torch.nn.grad.conv2d_weight(
        a.reshape((1, -1) + a.shape[2:]), (size * shape[0], ) + shape[1:],
        b.reshape((1, -1) + b.shape[2:]), module.stride, module.padding,
        module.dilation, size * module.groups)
    return grads.view((size, ) + shape)


def _conv_operands(module: nn.Conv2d, a: torch.Tensor, b: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(grad, patches)`` of a convolution, ``(B, groups, out, L)`` and
    ``(B, groups, in * kh * kw, L)``: the per-sample weight gradient of
    group ``g`` is ``grad[:, g] @ patches[:, g]^T``."""
    patches = _patches(module, a)
    return b.reshape(patches.shape[:2] + (-1, patches.shape[-1])), patches


def _patches(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A convolution's unfolded input ``(B, groups, in * kh * kw, L)``, as
    ``F.unfold`` orders it, copied from a strided view of the padded
    input (about twice as fast as ``F.unfold`` on a 2-core CPU)."""
    (kh, kw), (dh, dw) = module.kernel_size, module.dilation
    (sh, sw), (ph, pw) = module.stride, module.padding
    height, width = _output_size(module, x)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    s = x.stride()
    view = x.as_strided(
        (x.shape[0], x.shape[1], kh, kw, height, width),
        (s[0], s[1], dh * s[2], dw * s[3], sh * s[2], sw * s[3]),
        x.storage_offset())
    return view.reshape(x.shape[0], module.groups, -1, height * width)


def _weighted_square_sum(grads: torch.Tensor,
                         scale: Optional[torch.Tensor]) -> torch.Tensor:
    """``||T g_i||^2`` of per-sample gradients ``(B, ...)``, ``scale``
    ``T`` (None: 1): one pass scales them in place, one batched dot
    product of each with itself sums their squares (squaring, weighting
    and summing them took three passes); ``grads`` is overwritten."""
    if scale is not None:
        grads = grads.mul_(scale)
    flat = grads.reshape(grads.shape[0], 1, -1)
    return torch.bmm(flat, flat.transpose(1, 2)).view(-1)


def _layer_square_norms(module: nn.Module, a: torch.Tensor, b: torch.Tensor,
                        scales: Dict[str, Optional[torch.Tensor]]
                        ) -> torch.Tensor:
    """``sum ||T g_i||^2`` over the parameters of ``module`` named in
    ``scales`` (``T`` each, None for 1), per sample, from its input ``a``
    and the gradient ``b`` at its output."""
    size = a.shape[0]
    total = a.new_zeros(size)
    if 'weight' in scales and isinstance(module, nn.Linear) \
            and a.dim() == 2:
        scale = scales['weight']
        if scale is None:
            total += b.square().sum(1) * a.square().sum(1)
        else:
            total += (b.square() @ scale.square() * a.square()).sum(1)
        if 'bias' in scales:
            total += _weighted_square_sum(b.clone(), scales['bias'])
        return total
    if 'weight' in scales and isinstance(module, nn.Conv2d):
        total += _conv_square_norms(module, a, b, scales['weight'])
        if 'bias' in scales:
            total += _weighted_square_sum(b.sum(dim=(2, 3)), scales['bias'])
        return total
    for name, grads in _layer_grads(module, a, b).items():
        if name in scales:
            total += _weighted_square_sum(grads, scales[name])
    return total


def _conv_square_norms(module: nn.Conv2d, a: torch.Tensor, b: torch.Tensor,
                       scale: Optional[torch.Tensor]) -> torch.Tensor:
    """``||T g_i(weight)||^2`` of a convolution per sample, made a block
    of at most :data:`BLOCK_BYTES` at a time (a block of samples, or of
    one sample's output channels) into one reused buffer, from that
    block's own unfolded input, and reduced at once."""
    size, groups = a.shape[0], module.groups
    channels, positions = b.shape[1], b.shape[2] * b.shape[3]
    per_sample = module.weight.numel() * a.element_size()
    step = max(1, BLOCK_BYTES // per_sample)
    total = a.new_zeros(size)
    if _many_positions(module, positions, channels):
        for start in range(0, size, step):
            end = start + step
            total[start:end] = _weighted_square_sum(
                _conv_weight_grads(module, a[start:end], b[start:end]),
                scale)
        return total
    grad = b.reshape(size, groups, channels // groups, positions)
    if scale is not None:
        scale = scale.view(groups, channels // groups, -1)
    if positions == 1:  # one position: an outer product
        patches = _patches(module, a)
        grad, patches = grad[..., 0].square(), patches[..., 0].square()
        if scale is None:
            return (grad.sum(2) * patches.sum(2)).sum(1)
        return torch.einsum('bgo,goi,bgi->b', grad, scale.square(),
                            patches)
    inputs = module.weight[0].numel()  # in * kh * kw of a group
    if groups > 1 or step > 1:
        buffer = a.new_empty((min(step, size) * groups, channels // groups,
                              inputs))
        for start in range(0, size, step):
            end = min(size, start + step)
            patches = _patches(module, a[start:end])
            block = torch.bmm(grad[start:end].flatten(0, 1),
                              patches.flatten(0, 1).transpose(1, 2),
                              out=buffer[:(end - start) * groups])
            total[start:end] = _weighted_square_sum(
                block.view(end - start, groups, channels // groups, inputs),
                scale)
        return total
    # One sample's gradient exceeds a block: its output channels in rows.
    rows = max(1, BLOCK_BYTES // (inputs * a.element_size()))
    buffer = a.new_empty((min(rows, channels), inputs))
    for index in range(size):
        patches = _patches(module, a[index:index + 1])[0, 0].transpose(0, 1)
        for start in range(0, channels, rows):
            end = min(channels, start + rows)
            block = torch.mm(grad[index, 0, start:end], patches,
                             out=buffer[:end - start])
            total[index:index + 1] += _weighted_square_sum(
                block[None], None if scale is None else
                scale[0, start:end])
    return total


def forward_with_per_sample_weights(model: nn.Module,
                                    params: Sequence[torch.Tensor],
                                    weights: Sequence[torch.Tensor],
                                    run: Callable[[], torch.Tensor]
                                    ) -> torch.Tensor:
    """``run()`` with each sample of the batch under its own values of
    ``params``: the forward that :func:`per_sample_gradients` is the
    backward of.

    While ``run`` runs, each layer that owns one of ``params`` computes
    its output from every sample's own weights: a ``Linear`` as batched
    products, a ``Conv2d`` as products with its unfolded input (few output
    positions) or as a grouped convolution with one group a sample (many),
    BatchNorm in eval mode as a per-sample affine map. This is what
    ``torch.func.vmap`` over ``functional_call`` computes, without its
    grouped convolutions where they are slow: on a 2-core CPU, a 3x3
    convolution of 128 channels at one position for 63 samples took 25 ms
    grouped and a few ms as products.

    Args:
        model (nn.Module): Owns ``params``, as for
            :func:`per_sample_gradients`.
        params (Sequence[Tensor]): The parameters that differ per sample.
        weights (Sequence[Tensor]): Per parameter, its values for each
            sample, ``(B, *param.shape)``.
        run (Callable[[], Tensor]): Runs the batch through ``model``.

    Returns:
        What ``run`` returns.

    Raises:
        Unsupported: A parameter's layer is not supported.
    """
    owners = _owners(model, params)
    per_module: Dict[nn.Module, Dict[str, torch.Tensor]] = {}
    for param, value in zip(params, weights):
        module, name = owners[id(param)]
        per_module.setdefault(module, {})[name] = value
    own = {module: module.__dict__.get('forward') for module in per_module}
    for module, values in per_module.items():
        module.forward = _PerSampleForward(module, values)
    try:
        return run()
    finally:
        for module, forward in own.items():
            del module.forward
            if forward is not None:
                module.forward = forward


class _PerSampleForward:
    """A layer's forward under per-sample weights (see
    :func:`forward_with_per_sample_weights`)."""

    def __init__(self, module: nn.Module,
                 values: Dict[str, torch.Tensor]) -> None:
        self.module, self.values = module, values

    def value(self, name: str, size: int) -> Optional[torch.Tensor]:
        """``name`` per sample ``(B, ...)``: its own values, or the
        layer's, the same for every sample (None if it has none)."""
        if name in self.values:
            return self.values[name][:size]
        shared = getattr(self.module, name)
        return None if shared is None else shared.expand(
            (size, ) + tuple(shared.shape))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        module, size = self.module, x.shape[0]
        weight, bias = self.value('weight', size), self.value('bias', size)
        if isinstance(module, nn.Linear):
            out = torch.bmm(x.flatten(1, -2) if x.dim() > 2 else x[:, None],
                            weight.transpose(1, 2))
            out = out.view(x.shape[:-1] + (out.shape[-1], ))
            if bias is not None:
                out = out + bias.view((size, ) + (1, ) * (x.dim() - 2) +
                                      (-1, ))
            return out
        if isinstance(module, nn.Conv2d):
            return self.conv(x, weight, bias)
        # BatchNorm in eval mode: a per-sample affine map.
        shape = (size, -1) + (1, ) * (x.dim() - 2)
        out = (x - module.running_mean.view(shape[1:])) * torch.rsqrt(
            module.running_var.view(shape[1:]) + module.eps)
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        return out

    def conv(self, x: torch.Tensor, weight: torch.Tensor,
             bias: Optional[torch.Tensor]) -> torch.Tensor:
        module, size = self.module, x.shape[0]
        groups, channels = module.groups, weight.shape[1]
        height, width = _output_size(module, x)
        if _many_positions(module, height * width, channels):
            out = F.conv2d(
                x.reshape((1, -1) + x.shape[2:]),
                weight.reshape((-1, ) + weight.shape[2:]), None,
                module.stride, module.padding, module.dilation,
                size * groups).view(size, channels, height, width)
        else:
            out = torch.bmm(weight.reshape(size * groups, channels // groups,
                                           -1),
                            _patches(module, x).flatten(0, 1))
            out = out.view(size, channels, height, width)
        if bias is not None:
            out = out + bias.view(size, -1, 1, 1)
        return out


def _output_size(module: nn.Conv2d, x: torch.Tensor) -> Tuple[int, int]:
    """A convolution's output height and width for input ``x``."""
    return tuple(
        (x.shape[2 + d] + 2 * module.padding[d] - module.dilation[d] *
         (module.kernel_size[d] - 1) - 1) // module.stride[d] + 1
        for d in range(2))
