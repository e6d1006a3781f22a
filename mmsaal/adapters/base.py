# Copyright (c) mmsaal contributors. All rights reserved.
"""What every task adapter shares: which parameters move, cached features,
per-instance random draws."""
import contextlib
import zlib
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.checkpoint import checkpoint

PerturbScope = Union[str, Sequence[str]]
SCOPES = ('head', 'neck+head', 'all')
FROZEN_PREFIXES = {'head': ('backbone.', 'neck.'), 'neck+head': ('backbone.', )}


def perturbed_parameters(model: torch.nn.Module,
                         scope: PerturbScope) -> List[Tuple[str, torch.nn.Parameter]]:
    """The named parameters that SAAL perturbs.

    Args:
        model (nn.Module): A detector or segmentor.
        scope (str | Sequence[str]): ``'head'`` (everything but the backbone
            and neck), ``'neck+head'`` (everything but the backbone),
            ``'all'``, or a list of parameter-name prefixes.

    Returns:
        list[tuple[str, Parameter]]: Trainable parameters in scope.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if isinstance(scope, str):
        if scope not in SCOPES:
            raise ValueError(f'perturb_scope must be one of {SCOPES} or a '
                             f'list of parameter-name prefixes, got {scope!r}')
        frozen = FROZEN_PREFIXES.get(scope, ())
        chosen = [(n, p) for n, p in named if not n.startswith(frozen)]
    else:
        prefixes = tuple(scope)
        chosen = [(n, p) for n, p in named if n.startswith(prefixes)]
    if not chosen:
        raise ValueError(f'perturb_scope={scope!r} selects no trainable '
                         f'parameter of {type(model).__name__}')
    return chosen


def cached_stage(model: torch.nn.Module, names: Sequence[str]) -> str:
    """Which stage's output can be computed once, without autograd.

    Returns ``'extract_feat'`` when neither backbone nor neck moves,
    ``'backbone'`` when only the backbone is fixed, else ``'none'``.
    """
    moves_backbone = any(n.startswith('backbone.') for n in names)
    moves_neck = any(n.startswith('neck.') for n in names)
    if not moves_backbone and not moves_neck:
        return 'extract_feat'
    if not moves_backbone and hasattr(model, 'backbone'):
        return 'backbone'
    return 'none'


def compute_cached_stage(model: torch.nn.Module, stage: str,
                         inputs: torch.Tensor):
    """The output of the stage :func:`cached_stage` named (None for
    ``'none'``); call it under ``torch.no_grad()``."""
    if stage == 'extract_feat':
        return model.extract_feat(inputs)
    if stage == 'backbone':
        return model.backbone(inputs)
    return None


@contextlib.contextmanager
def replaced_forward(module: torch.nn.Module, attr: str,
                     output) -> Iterator[None]:
    """Make ``module.<attr>(...)`` return ``output`` inside the block, so
    mmdet's and mmseg's own ``loss()`` / ``predict()`` run on cached
    features."""
    setattr(module, attr, lambda *args, **kwargs: output)
    try:
        yield
    finally:
        delattr(module, attr)


@contextlib.contextmanager
def recorded(owner, attr: str, store: dict, key: str,
             argument: Optional[int] = None) -> Iterator[None]:
    """Inside the block, ``owner.<attr>`` runs as usual and ``store[key]``
    keeps its first result (or its positional ``argument``)."""
    original = getattr(owner, attr)

    def call(*args, **kwargs):
        result = original(*args, **kwargs)
        if key not in store:
            store[key] = result if argument is None else args[argument]
        return result

    setattr(owner, attr, call)
    try:
        yield
    finally:
        delattr(owner, attr)


def checkpoint_blocks(module: torch.nn.Module) -> List[torch.nn.Module]:
    """The blocks of ``module`` that OpenMMLab lets checkpoint: the
    innermost modules with a ``with_cp`` switch (ResNet's Bottleneck and
    BasicBlock, Swin's blocks, ...)."""
    switched = [m for m in module.modules() if hasattr(m, 'with_cp')]
    return [
        block for block in switched
        if not any(inner is not block and hasattr(inner, 'with_cp')
                   for inner in block.modules())
    ]


@contextlib.contextmanager
def checkpointed_blocks(model: torch.nn.Module,
                        with_cp: Optional[bool] = None) -> Iterator[None]:
    """Run the backbone's blocks with activation checkpointing, or without.

    A checkpointed block keeps only its input for the backward pass and
    recomputes the rest there: a moving backbone costs one more forward
    instead of holding all its activations. The blocks' own checkpointing
    is reentrant, which cannot serve ``torch.autograd.grad``, so inside the
    block it is off and ours (non-reentrant) runs in its place.

    Args:
        model (nn.Module): A detector or segmentor.
        with_cp (bool, optional): Checkpoint every block of
            ``model.backbone`` (True), none (False), or those whose own
            ``with_cp`` is set in the model config (None).
    """
    backbone = getattr(model, 'backbone', None)
    blocks = checkpoint_blocks(backbone) if backbone is not None else []
    saved = [(block.with_cp, block.__dict__.get('forward'))
             for block in blocks]
    try:
        for block in blocks:
            if block.with_cp if with_cp is None else with_cp:
                block.forward = _checkpointed(block.forward)
            block.with_cp = False
        yield
    finally:
        for block, (switch, forward) in zip(blocks, saved):
            block.with_cp = switch
            if forward is None:
                block.__dict__.pop('forward', None)
            else:
                block.forward = forward


def backbone_checkpointing(model: torch.nn.Module, stage: str,
                           with_cp: Optional[bool]):
    """:func:`checkpointed_blocks` where the backbone moves (``stage`` of
    :func:`cached_stage` is ``'none'``); elsewhere the backbone runs once
    without autograd and nothing changes."""
    if stage != 'none':
        return contextlib.nullcontext()
    return checkpointed_blocks(model, with_cp)


def _checkpointed(forward):
    def run(*args, **kwargs):
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


def instance_seed(seed: int, key: str) -> int:
    """A stable seed per instance (same on every run, rank and batch)."""
    return (seed * 1_000_003 + zlib.crc32(key.encode('utf-8'))) % (2**31)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Fixed torch draws inside the block, global RNG untouched outside."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def sum_losses(losses: dict, terms: Sequence[str] = None) -> torch.Tensor:
    """Sum a loss dict as mmengine's ``parse_losses`` does (keys holding
    ``'loss'``), or only ``terms`` when given."""
    total = 0
    for key, value in losses.items():
        if (terms is None and 'loss' not in key) or (terms is not None
                                                     and key not in terms):
            continue
        if isinstance(value, (list, tuple)):
            value = sum(v.mean() for v in value)
        total = total + value
    if not torch.is_tensor(total):
        raise ValueError(f'no loss term selected from {sorted(losses)} '
                         f'(loss_terms={terms})')
    return total
