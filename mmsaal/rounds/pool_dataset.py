# Copyright (c) mmsaal contributors. All rights reserved.
"""The pool as scoring sees it: the train items under the test pipeline."""
import copy
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.registry import DATASETS


def item_names(dataset) -> List[str]:
    """A name per item: its image path relative to the items' common folder.
    """
    paths = [
        dataset.get_data_info(i).get('img_path') or str(i)
        for i in range(len(dataset))
    ]
    if len(paths) > 1 and all(osp.sep in p for p in paths):
        common = osp.commonpath(paths)
        return [osp.relpath(p, common) for p in paths]
    return [osp.basename(p) for p in paths]


def scoring_pipeline(cfg: Config) -> List[dict]:
    """The test (or val) dataloader's pipeline without annotation loading:
    scoring must never see a label."""
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader:
        raise KeyError('the config has no test_dataloader or val_dataloader '
                       'to take the scoring pipeline from; set '
                       'ActiveLearningHook.pool_pipeline')
    return [
        step for step in _find_pipeline(loader['dataset'])
        if 'Annotations' not in step['type']
    ]


def pool_dataset_cfg(cfg: Config, pool_index: Optional[int] = None):
    """The config of the pool's dataset: the train dataset without
    ``RepeatDataset``, and when it concatenates several (a labeled source
    domain and the target pool), the one at ``pool_index``.

    Args:
        cfg (Config): The experiment config.
        pool_index (int, optional): Position of the pool in the
            ``ConcatDataset``. Defaults to None: the train sampler's
            ``pool_index`` (``LabeledSetSampler``), if any.

    Returns:
        ConfigDict: A deep copy of the pool's dataset config.
    """
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while 'RepeatDataset' in str(dataset_cfg.get('type', '')):
        dataset_cfg = dataset_cfg['dataset']
    if pool_index is None:
        pool_index = (cfg.train_dataloader.get('sampler')
                      or {}).get('pool_index')
    if pool_index is not None:
        dataset_cfg = dataset_cfg['datasets'][pool_index]
    return dataset_cfg


def build_pool_dataset(cfg: Config,
                       pipeline: Optional[List[dict]] = None,
                       pool_index: Optional[int] = None):
    """Build the pool's dataset (:func:`pool_dataset_cfg`) with
    ``pipeline``.

    Args:
        cfg (Config): The experiment config (under its default scope).
        pipeline (list[dict], optional): Defaults to
            :func:`scoring_pipeline`.
        pool_index (int, optional): See :func:`pool_dataset_cfg`.

    Returns:
        The dataset, in the same item order as training.
    """
    dataset_cfg = pool_dataset_cfg(cfg, pool_index)
    _set_pipeline(dataset_cfg, pipeline or scoring_pipeline(cfg))
    return DATASETS.build(dataset_cfg)


def _find_pipeline(cfg: dict) -> List[dict]:
    if 'pipeline' in cfg:
        return cfg['pipeline']
    for key in ('dataset', 'datasets'):
        inner = cfg.get(key)
        if isinstance(inner, (list, tuple)):
            inner = inner[0]
        if inner is not None:
            return _find_pipeline(inner)
    raise KeyError("no pipeline in the test dataloader's dataset config")


def _set_pipeline(cfg: dict, pipeline: List[dict]) -> None:
    inner = cfg.get('datasets', cfg.get('dataset'))
    if inner is None:
        cfg['pipeline'] = copy.deepcopy(pipeline)
        return
    for sub in (inner if isinstance(inner, (list, tuple)) else [inner]):
        _set_pipeline(sub, pipeline)
