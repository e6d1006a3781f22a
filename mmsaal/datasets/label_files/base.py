# Copyright (c) mmsaal contributors. All rights reserved.
import os.path as osp
from typing import Dict, List, NamedTuple, Optional

from mmsaal.utils import WorkDirError, write_bytes_atomic


class Written(NamedTuple):
    """What a write did."""
    #: Images whose labels were written (those already there are not).
    images: int
    #: Boxes written (0 for class labels).
    objects: int
    #: Images whose earlier labels were replaced.
    replaced: List[str]
    #: Where what was replaced is kept.
    backups: List[str]
    #: Where the labels went (a file or a folder), for messages.
    where: str

    @property
    def changed(self) -> bool:
        return self.images > 0


class LabelFiles:
    """The label files of a pool dataset (see the package's docstring).

    Args:
        cfg (dict): The pool dataset's config (paths as the run reads
            them, relative to the directory it runs in).
    """

    #: What a label of this layout is: ``'boxes'``, ``'class'`` or
    #: ``'maps'`` (a label map an image).
    kind = 'boxes'

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg

    @property
    def classes(self) -> List[str]:
        """The dataset's class names, in order."""
        classes = (self.cfg.get('metainfo') or {}).get('classes')
        if classes is None:
            classes = dataset_class(self.cfg).METAINFO['classes']
        return list(classes)

    @classmethod
    def how(cls, work_dir: str) -> str:
        """How a person labels the queried images, for the message of a
        waiting round."""
        return (f'Label them, then either import a COCO file of their '
                f'annotations:\n  python tools/import_labels.py {work_dir} '
                f'LABELS.json\nor add their label files to the dataset')

    def write_boxes(self, checked, images: List[int], replace: bool,
                    round_idx: int) -> Written:
        """Write the boxes of ``images`` (label image ids of ``checked``,
        a :class:`~mmsaal.rounds.label_import.Checked`)."""
        raise WorkDirError(
            f'the pool dataset {self.cfg.get("type")} is labeled by class, '
            f'not by boxes: give each queried image its class.')

    def write_classes(self, classes: Dict[str, str],
                      round_idx: int) -> Written:
        """Write ``{queried image file_name: class name}``."""
        raise WorkDirError(
            f'the pool dataset {self.cfg.get("type")} is labeled by boxes, '
            f'not by class: draw the objects of each queried image.')


def dataset_class(cfg: dict) -> Optional[type]:
    """The class a dataset config builds, or None when mmsaal's registry
    (and mmengine's, its parent) has no such name. A type of another
    library needs its scope (``'mmseg.CityscapesDataset'``), as
    ``pool_dataset_cfg(cfg, scoped=True)`` gives it."""
    from mmsaal.registry import DATASETS
    name = cfg.get('type')
    if isinstance(name, type):
        return name
    try:
        return DATASETS.get(str(name))
    except KeyError:
        return None


def label_files_for(dataset_type) -> Optional[type]:
    """The :class:`LabelFiles` class of a dataset class: its own
    ``label_files``, :class:`~.label_maps.LabelMaps` for an mmseg dataset,
    or None."""
    files = getattr(dataset_type, 'label_files', None)
    if files is None and dataset_type is not None:
        from .label_maps import LabelMaps, reads_label_maps
        if reads_label_maps(dataset_type):
            files = LabelMaps
    return files


def label_files_of(cfg: dict) -> LabelFiles:
    """The :class:`LabelFiles` of the pool dataset that ``cfg`` builds."""
    files = label_files_for(dataset_class(cfg))
    if files is None:
        raise WorkDirError(
            f'the pool dataset is {cfg.get("type")}: a person\'s labels are '
            f'written for mmsaal.PoolCocoDataset (a COCO file), '
            f'mmsaal.PoolVOCDataset (VOC XMLs), mmsaal.PoolImageFolder '
            f'(class folders) and MMSegmentation datasets (label maps). For '
            f'another dataset add its label files where it reads them, then '
            f'resume.')
    return files(cfg)


def write_label_file(data: bytes, path: str, round_idx: int,
                     backups: List[str]) -> None:
    """Write ``data`` to ``path`` atomically, first keeping what is there
    as ``{path}.round_XX[.N].bak`` (appended to ``backups``)."""
    if osp.exists(path):
        backups.append(backup(path, round_idx))
    write_bytes_atomic(data, path)


def backup(path: str, round_idx: int) -> str:
    """Copy ``path`` to ``{path}.round_XX[.N].bak``; returns the copy."""
    stem = f'{path}.round_{round_idx:02d}'
    target, n = f'{stem}.bak', 1
    while osp.exists(target):
        n += 1
        target = f'{stem}.{n}.bak'
    with open(path, 'rb') as f:
        data = f.read()
    write_bytes_atomic(data, target)
    return target
