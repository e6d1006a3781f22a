# Copyright (c) mmsaal contributors. All rights reserved.
"""The labels of ``PoolImageFolder``: each image in its class's folder."""
import os
import os.path as osp
from typing import Dict, List, Tuple

from mmsaal.pool import dump_json_atomic
from mmsaal.utils import WorkDirError
from mmsaal.utils.files import read_json
from .base import LabelFiles, Written


def image_folder(cfg: dict) -> str:
    """The folder of the class folders: ``data_root`` joined with
    ``data_prefix`` (a path, or ``dict(img_path=...)``), as mmpretrain's
    ``CustomDataset`` joins them."""
    prefix = cfg.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    return osp.join(cfg.get('data_root') or '', prefix)


def class_folders(root: str, unlabeled: str) -> List[str]:
    """The class folders under ``root`` (all folders but ``unlabeled``),
    sorted as mmpretrain sorts them."""
    if not osp.isdir(root):
        raise WorkDirError(f'the image folder {root} of the pool does not '
                           f'exist: set the pool dataset\'s data_root and '
                           f'data_prefix to the folder of the class folders')
    return sorted(name for name in os.listdir(root)
                  if osp.isdir(osp.join(root, name)) and name != unlabeled
                  and not name.startswith('.'))


class ClassFolders(LabelFiles):
    """A queried image is labeled by moving it from ``unlabeled/`` into
    its class's folder (made when it does not exist yet), under the same
    relative path: its pool identity. Every move is recorded first in
    ``{image folder}/moves.round_XX.json`` (``[from, to]`` pairs), to undo
    by moving back. An image already in the chosen class is left; one in
    another class is moved to the new one (its labels replaced)."""

    kind = 'class'

    @classmethod
    def how(cls, work_dir: str) -> str:
        return ('Label them: move each out of the pool\'s unlabeled/ folder '
                'into its class\'s folder, under the same path')

    @property
    def root(self) -> str:
        return image_folder(self.cfg)

    @property
    def unlabeled(self) -> str:
        return self.cfg.get('unlabeled_folder', 'unlabeled')

    @property
    def classes(self) -> List[str]:
        given = (self.cfg.get('metainfo') or {}).get('classes')
        return list(given) if given is not None else class_folders(
            self.root, self.unlabeled)

    def write_classes(self, classes: Dict[str, str],
                      round_idx: int) -> Written:
        known = self.classes
        unknown = sorted({c for c in classes.values() if c not in known})
        if unknown:
            raise WorkDirError(
                f'the class {unknown[0]!r} is not one of the pool\'s '
                f'{known} (its class folders): label with one of them. '
                f'Nothing was moved.')
        moves: List[Tuple[str, str]] = []
        replaced = []
        for name, label in sorted(classes.items()):
            target = osp.join(self.root, label, name)
            if osp.exists(target):
                continue
            found = [osp.join(self.root, folder, name)
                     for folder in [self.unlabeled] + known
                     if osp.exists(osp.join(self.root, folder, name))]
            if not found:
                raise WorkDirError(
                    f'{name} is in none of the folders of {self.root} '
                    f'(neither {self.unlabeled}/ nor a class folder): put it '
                    f'back in {self.unlabeled}/. Nothing was moved.')
            if not found[0].startswith(
                    osp.join(self.root, self.unlabeled) + os.sep):
                replaced.append(name)
            moves.append((found[0], target))
        if moves:
            record = osp.join(self.root, f'moves.round_{round_idx:02d}.json')
            earlier = read_json(record, 'the record of moves') if osp.exists(
                record) else []
            dump_json_atomic(earlier + [list(m) for m in moves], record)
            for source, target in moves:
                os.makedirs(osp.dirname(target), exist_ok=True)
                os.replace(source, target)
        return Written(len(moves), 0, replaced,
                       [record] if moves else [], self.root)
