# Copyright (c) mmsaal contributors. All rights reserved.
"""What the measuring tools (``tools/benchmark_scoring.py``,
``tools/misc/batched_heads.py``) start from."""
import copy
import time
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from mmsaal.rounds.pool_dataset import build_pool_dataset


def build_model(cfg: Config) -> torch.nn.Module:
    """``cfg.model`` built as mmengine's Runner builds it: with the
    config's top-level ``data_preprocessor`` merged in where the model sets
    none (mmpretrain's and mmseg's configs keep the mean and std there), so
    that a measured model sees the normalised images training saw."""
    model_cfg = copy.deepcopy(cfg.model)
    if isinstance(model_cfg, dict) and cfg.get('data_preprocessor'):
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    return MODELS.build(model_cfg)


def model_and_pool(config: str,
                   cfg_options: Optional[dict] = None,
                   checkpoint: Optional[str] = None,
                   num_images: int = 20
                   ) -> Tuple[Config, torch.nn.Module, List[dict]]:
    """The config (``cfg_options`` merged), its model in eval mode and the
    first ``num_images`` pool items under the scoring pipeline.

    The weights are initialised with torch's seed 0, so that every process
    that measures builds the same model, or loaded from ``checkpoint``.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu',
                        logger='silent')
    model.eval()
    dataset = build_pool_dataset(cfg)
    items = [dataset[i] for i in range(min(num_images, len(dataset)))]
    return cfg, model, items


def fastest_seconds(function: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``function``, after one
    untimed warm-up call (allocator, lazy initialisation)."""
    function()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
