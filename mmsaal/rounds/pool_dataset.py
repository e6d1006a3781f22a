# Copyright (c) mmsaal contributors. All rights reserved.
"""The pool as scoring sees it: the train items under the test pipeline."""
import copy
import os.path as osp
import pickle
from typing import Iterator, List, Optional

import numpy as np
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from mmsaal.tasks import task_of


def data_infos(dataset) -> Iterator[dict]:
    """Every item's data info, in order, as ``get_data_info`` gives it, for
    reading only.

    An mmengine ``BaseDataset`` that keeps mmengine's own
    ``get_data_info`` is read straight from its list (or its serialized
    bytes), without a copy per item: at a million items that is seconds,
    not a minute. Any other dataset goes through ``get_data_info``.
    """
    plain = isinstance(dataset, BaseDataset) and type(
        dataset).get_data_info is BaseDataset.get_data_info and getattr(
            dataset, '_fully_initialized', False)
    if not plain:
        for index in range(len(dataset)):
            yield dataset.get_data_info(index)
        return
    if dataset.serialize_data:
        data = memoryview(dataset.data_bytes)
        start = 0
        for end in dataset.data_address.tolist():
            yield pickle.loads(data[start:end])
            start = end
    else:
        yield from dataset.data_list


def labels_present(data_info: dict) -> bool:
    """Whether an item's labels exist: a ``PoolCocoDataset`` item listed in
    the annotation file, or a label map / XML file that exists."""
    evidence = _label_evidence(data_info)
    return evidence if isinstance(evidence, bool) else osp.exists(evidence)


def _label_evidence(data_info: dict):
    """What says whether an item is labeled: a bool, or the file that must
    exist."""
    if 'labeled' in data_info:
        return bool(data_info['labeled'])
    return task_of(data_info).label_evidence(data_info)


class PoolItems:
    """What the rounds need of every pool item, read in one pass over the
    dataset: its image path, its name and whether its labels exist
    (checked on disk when first asked for).

    Args:
        paths (list[str]): Each item's ``img_path``.
        evidence (list): Each item's label evidence: a bool, or the label
            file that must exist.
        pool_names (list[str], optional): Each item's own name, when its
            data info gives one (``pool_name``: an image that moves when it
            is labeled); by default the paths name the items.
    """

    def __init__(self, paths: List[str], evidence: list,
                 classes: Optional[np.ndarray] = None,
                 pool_names: Optional[List[str]] = None) -> None:
        self.paths = paths
        self._pool_names = pool_names
        self._evidence = evidence
        self._labeled: Optional[np.ndarray] = None
        #: Each item's class (of a classification dataset),
        #: or None when the items have none.
        self.classes = classes

    @classmethod
    def of(cls, dataset) -> 'PoolItems':
        paths, evidence, classes, names = [], [], [], []
        for i, info in enumerate(data_infos(dataset)):
            paths.append(info.get('img_path') or str(i))
            names.append(info.get('pool_name'))
            evidence.append(_label_evidence(info))
            label = task_of(info).item_class(info)
            classes.append(-1 if label is None else label)
        known = np.asarray(classes, np.int64)
        return cls(paths, evidence,
                   known if len(known) and (known >= 0).all() else None,
                   names if all(n is not None for n in names) else None)

    @property
    def names(self) -> List[str]:
        """:func:`item_names` of the pool."""
        return self._pool_names or relative_names(self.paths)

    @property
    def labeled(self) -> np.ndarray:
        """Bool, :func:`labels_present` of each item (read once)."""
        if self._labeled is None:
            self._labeled = np.asarray([
                e if isinstance(e, bool) else osp.exists(e)
                for e in self._evidence
            ], dtype=bool)
            self._evidence = None
        return self._labeled


def item_names(dataset) -> List[str]:
    """A name per item: its ``pool_name`` when every item has one, else its
    image path relative to the items' common folder."""
    paths, names = [], []
    for i, info in enumerate(data_infos(dataset)):
        paths.append(info.get('img_path') or str(i))
        names.append(info.get('pool_name'))
    if names and all(name is not None for name in names):
        return names
    return relative_names(paths)


def relative_names(paths: List[str]) -> List[str]:
    """The paths relative to their common folder (when every path has a
    folder), else their file names."""
    if len(paths) > 1 and all(osp.sep in p for p in paths):
        first, last = min(paths), max(paths)
        joined = '\0' + '\0'.join(paths) + '\0'
        if first != last and not any(part in joined for part in _UNNORMAL):
            # osp.relpath to osp.commonpath, without a call per path: the
            # common prefix of all is that of the first and last in sort
            # order, cut back to a whole folder.
            cut = osp.commonprefix([first, last]).rfind(osp.sep) + 1
            return [p[cut:] for p in paths]
        common = osp.commonpath(paths)
        return [osp.relpath(p, common) for p in paths]
    return [osp.basename(p) for p in paths]


#: What ``osp.relpath`` would rewrite beyond cutting the folder, in
#: paths joined by (and framed in) NUL: repeated separators, ``.`` or
#: ``..`` parts, a trailing separator.
_UNNORMAL = ('//', '/./', '/../', '\0./', '\0../', '/.\0', '/..\0', '/\0',
             '\0.\0', '\0..\0')


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


def pool_dataset_cfg(cfg: Config, pool_index: Optional[int] = None,
                     scoped: bool = False):
    """The config of the pool's dataset: the train dataset without
    ``RepeatDataset``, and when it concatenates several (a labeled source
    domain and the target pool), the one at ``pool_index``.

    Args:
        cfg (Config): The experiment config.
        pool_index (int, optional): Position of the pool in the
            ``ConcatDataset``. Defaults to None: the train sampler's
            ``pool_index`` (``LabeledSetSampler``), if any.
        scoped (bool): Name a bare ``type`` with the config's
            ``default_scope`` (``'mmseg.CityscapesDataset'``), for reading
            the dataset's class outside a Runner. Defaults to False.

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
    name, scope = dataset_cfg.get('type'), cfg.get('default_scope')
    if scoped and scope and isinstance(name, str) and '.' not in name:
        dataset_cfg['type'] = f'{scope}.{name}'
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
