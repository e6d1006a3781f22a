# Copyright (c) mmsaal contributors. All rights reserved.
"""A person labels the query: export it, stop, take the labels back."""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

from mmsaal.pool.store import dump_json_atomic, write_text_atomic

ORACLES = ('simulated', 'human')


class AwaitingLabels(RuntimeError):
    """The query is written out; the run stops until its labels arrive.

    ``tools/train_al.py`` prints the message and exits with status 0.
    """


def labels_present(data_info: dict) -> bool:
    """Whether an item's labels exist: a ``PoolCocoDataset`` item listed in
    the annotation file, or a label map / XML file that exists."""
    if 'labeled' in data_info:
        return bool(data_info['labeled'])
    for key in ('seg_map_path', 'xml_path'):
        if data_info.get(key):
            return osp.exists(data_info[key])
    return True


def query_files(round_idx: int,
                indices: Sequence[int],
                scores: Dict[int, float],
                infos: Sequence[dict],
                classes: Sequence[str],
                info: dict,
                extra: Optional[dict] = None
                ) -> Dict[str, Callable[[str], None]]:
    """The files of a query folder, for ``RoundStore.save_query``.

    - ``query.json``: the queried images as a COCO image list (what CVAT,
      Label Studio and the like import), with ``score`` per image;
    - ``query.txt``: one ``path<TAB>score`` line per image, best first;
    - ``selection.json``: what the hook resumes from (pool positions, every
      candidate's score, facts about the round).

    Args:
        round_idx (int): The round.
        indices (Sequence[int]): Pool positions queried.
        scores (dict[int, float]): Score of every scored candidate.
        infos (Sequence[dict]): ``get_data_info`` of each queried item.
        classes (Sequence[str]): The dataset's class names.
        info (dict): Facts about the round (strategy, time, ...).
        extra (dict, optional): More of ``selection.json`` (the regions of a
            region query).
    """
    order = sorted(range(len(indices)),
                   key=lambda j: -scores.get(int(indices[j]), 0.0))
    images = []
    for j in order:
        data_info = infos[j]
        image = dict(
            id=int(indices[j]),
            file_name=_file_name(data_info),
            path=osp.abspath(data_info['img_path']))
        for key in ('width', 'height'):
            if data_info.get(key):
                image[key] = int(data_info[key])
        if int(indices[j]) in scores:
            image['score'] = float(scores[int(indices[j])])
        images.append(image)
    coco = dict(
        info=dict(description=f'mmsaal query, round {round_idx}'),
        images=images,
        annotations=[],
        categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(classes)
        ])
    lines = [
        f'{image["path"]}\t{image.get("score", "")}' for image in images
    ]
    selection = dict(
        round=round_idx,
        indices=[int(i) for i in indices],
        scores={str(k): float(v)
                for k, v in scores.items()},
        info=info,
        **(extra or {}))
    return {
        'query.json': lambda path: dump_json_atomic(coco, path),
        'query.txt': lambda path: write_text_atomic('\n'.join(lines) + '\n',
                                                    path),
        'selection.json': lambda path: dump_json_atomic(selection, path),
    }


def _file_name(data_info: dict) -> str:
    """The image path relative to the dataset's image folder when known."""
    return data_info.get('file_name') or osp.basename(data_info['img_path'])


def waiting_message(round_idx: int, folder: str, missing: Optional[List[int]],
                    total: int, work_dir: str, config: str) -> str:
    """What the person does next, printed when the run stops."""
    head = (f'Active learning round {round_idx} waits for labels: {total} '
            f'items to label are listed in {folder}/query.json (a COCO '
            f'image list) and query.txt (paths and scores).')
    if missing:
        head = (f'Active learning round {round_idx} still waits for labels: '
                f'{len(missing)} of the {total} queried items have none '
                f'(pool positions {missing[:10]}...). They are listed in '
                f'{folder}/query.json.')
    return (f'{head}\nLabel them, then either import a COCO file of their '
            f'annotations:\n  python tools/import_labels.py {work_dir} '
            f'LABELS.json\nor add their label files to the dataset, and go on '
            f'with:\n  python tools/train_al.py {config} --work-dir '
            f'{work_dir} --resume')
