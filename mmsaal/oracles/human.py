# Copyright (c) mmsaal contributors. All rights reserved.
"""A person labels the query: the round writes it out, stops, and goes on
once the labels are in the dataset (``--resume``)."""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import barrier, is_main_process

from mmsaal.datasets.label_files import LabelFiles, label_files_for
from mmsaal.pool import PoolState, draw_initial_set, query_listing
from mmsaal.registry import ORACLES
from mmsaal.rounds.pool_dataset import PoolItems
from mmsaal.rounds.units import ImageUnits, Query
from mmsaal.tasks import task_of
from mmsaal.utils.errors import FieldError
from .base import AwaitingLabels, BaseOracle, LabelingContext

def query_files(round_idx: int, query: Query, infos: Sequence[dict],
                classes: Sequence[str]) -> Dict[str, Callable[[str], None]]:
    """The files of a query folder, for ``RoundStore.save_query``
    (:func:`~mmsaal.pool.query_listing`): the queried images best first,
    each with what its task shows a person.

    Args:
        round_idx (int): The round.
        query (Query): The query, as ``selection.json`` keeps it.
        infos (Sequence[dict]): ``get_data_info`` of each queried item.
        classes (Sequence[str]): The dataset's class names.
    """
    indices, scores = query.indices, query.scores or {}
    order = sorted(range(len(indices)),
                   key=lambda j: -scores.get(int(indices[j]), 0.0))
    images = []
    for j in order:
        data_info = infos[j]
        image = dict(
            id=int(indices[j]),
            file_name=_file_name(data_info),
            path=osp.abspath(data_info['img_path']))
        image.update(task_of(data_info).query_fields(data_info))
        for key in ('width', 'height'):
            if data_info.get(key):
                image[key] = int(data_info[key])
        if int(indices[j]) in scores:
            image['score'] = float(scores[int(indices[j])])
        images.append(image)
    return query_listing(round_idx, images, classes,
                         dict(round=round_idx, **query.to_json()))


def _file_name(data_info: dict) -> str:
    """The image path relative to the dataset's image folder when known."""
    return data_info.get('file_name') or osp.basename(data_info['img_path'])


def waiting_message(round_idx: int, folder: str, missing: Optional[List[int]],
                    total: int, work_dir: str, config: str,
                    how: Optional[str] = None) -> str:
    """What the person does next, printed when the run stops (``how``: how
    the pool's label files are written, :meth:`LabelFiles.how`)."""
    head = (f'Active learning round {round_idx} waits for labels: {total} '
            f'items to label are listed in {folder}/query.json (a COCO '
            f'image list) and query.txt (paths and scores).')
    if missing:
        head = (f'Active learning round {round_idx} still waits for labels: '
                f'{len(missing)} of the {total} queried items have none '
                f'(pool positions {missing[:10]}...). They are listed in '
                f'{folder}/query.json.')
    how = how or LabelFiles.how(work_dir)
    return (f'{head}\n{how}, and go on with:\n  python tools/train_al.py '
            f'{config} --work-dir {work_dir} --resume')


@ORACLES.register_module(name=['HumanOracle', 'human'])
class HumanOracle(BaseOracle):
    """A person labels the query: export it, stop the run, take the labels
    back on ``--resume`` (``active_learning.oracle='human'``).

    :meth:`request` writes ``{rounds}/query_XX/`` (``query.json``, a COCO
    image list; ``query.txt``, paths and scores; ``selection.json``, what
    the run resumes from; ``regions.json`` and ``units.npz`` for region and
    pixel queries) and
    raises :class:`AwaitingLabels`; :meth:`wait_for_labels` raises it again
    until every queried item (region) has its labels.

    Args:
        context (LabelingContext): Of the run: the pool, its round folders,
            the units, the work dir and config named in the instructions.
    """

    name = 'human'

    def __init__(self, context: LabelingContext) -> None:
        if context.initial_balanced:
            raise FieldError(
                "ActiveLearningHook.initial_balanced draws the initial set, "
                "and with oracle='human' it is what is labeled at the start: "
                "set initial_balanced=False, or label a balanced set.")
        super().__init__(context)

    def check_pool(self, state: PoolState) -> None:
        """A person labels what lacks labels: any pool will do."""

    def initial_set(self, state: PoolState, size: int,
                    may_start_empty: bool) -> np.ndarray:
        """The items labeled at the start; when there are none (and no
        labeled data beside the pool), a random draw to label first."""
        items = self.items or PoolItems.of(self.pool)
        labeled = np.flatnonzero(items.labeled).astype(np.int64)
        if isinstance(self.units, ImageUnits) and \
                len(labeled) == state.pool_size:
            raise FieldError(
                f"oracle='{self.name}': all {state.pool_size} pool images "
                f"have labels already, so nothing is left for a person to "
                f"label. Put the images to label in the pool without "
                f"labels: a VOC pool (mmsaal.PoolVOCDataset) lists them in "
                f"its image list without an Annotations/<id>.xml, a COCO "
                f"pool (mmsaal.PoolCocoDataset) keeps them in its image "
                f"folder without an entry in the annotation file.")
        if len(labeled) and size and size != len(labeled):
            raise FieldError(
                f"ActiveLearningHook.initial_labeled asks for {size} "
                f"labeled images, but with oracle='{self.name}' the "
                f"initial set is the {len(labeled)} pool images that have "
                f"labels: set initial_labeled={len(labeled)}, or 0.")
        if len(labeled) or may_start_empty:
            return labeled
        query = self.pending(0)
        if query is None:
            query = Query(
                draw_initial_set(state.pool_size, size, state.round_rng(0)),
                info=dict(strategy='initial', num_candidates=0,
                          scoring_seconds=0.0))
            self.request(0, query)
        self.wait_for_labels(0, query)
        return query.indices

    def pending(self, round_idx: int) -> Optional[Query]:
        saved = self.store.load_query(round_idx)
        if saved is None:
            return None
        return Query.from_json(saved, self.store.read_query_units(round_idx))

    def request(self, round_idx: int, query: Query, model=None) -> None:
        """Write the query for a person (main process) and stop the run."""
        query.info = dict(query.info, oracle=query.info.get('oracle',
                                                            'human'))
        if is_main_process():
            files = query_files(
                round_idx, query,
                [self.pool.get_data_info(int(i)) for i in query.indices],
                self.pool.metainfo.get('classes', ()))
            files.update(
                self.units.query_files(round_idx, query, self.names))
            self.store.save_query(round_idx, files)
        barrier()
        raise AwaitingLabels(
            waiting_message(round_idx, self.store.query_dir(round_idx), None,
                            len(query.indices), self.work_dir, self.config,
                            self._how()))

    @property
    def label_files(self) -> type:
        """The :class:`LabelFiles` of the pool: what a label is and how a
        person gives it."""
        return label_files_for(type(self.pool)) or LabelFiles

    def _how(self) -> str:
        """How a person labels this pool."""
        return self.label_files.how(self.work_dir)

    def wait_for_labels(self, round_idx: int, query: Query) -> None:
        missing = [
            int(i) for i in query.indices if not self.units.labels_arrived(
                self.pool.get_data_info(int(i)), query, int(i))
        ]
        if missing:
            raise AwaitingLabels(
                waiting_message(round_idx, self.store.query_dir(round_idx),
                                missing, len(query.indices), self.work_dir,
                                self.config, self._how()))
