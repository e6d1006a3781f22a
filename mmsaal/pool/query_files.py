# Copyright (c) mmsaal contributors. All rights reserved.
"""The files of a query: what a person labels from and what a run resumes
from.

- ``query.json`` (the queried images as a COCO image list, what CVAT,
  Label Studio and the like import), ``query.txt`` (``path<TAB>score``
  lines) and ``selection.json`` (pool positions, every candidate's score,
  facts about the round), in a ``query_NN`` folder that waits for labels;
- ``regions.json``: the queried regions of each image with their scores
  (for pixels, each image's count and best and last score), in the query
  folder and in the round folder;
- ``units.npz``: the queried units, compact, for the run to resume from.
"""
from typing import Callable, Dict, List, Sequence

import numpy as np

from mmsaal.utils.files import atomic_write
from .store import dump_json_atomic, write_text_atomic

#: A region or pixel query's units (:func:`save_query_units`), in its
#: query folder.
QUERY_UNITS_FILE = 'units.npz'

Writer = Callable[[str], None]


def query_listing(round_idx: int, images: List[Dict], classes: Sequence[str],
                  selection: Dict) -> Dict[str, Writer]:
    """The writers of ``query.json``, ``query.txt`` and ``selection.json``.

    Args:
        round_idx (int): The round.
        images (list[dict]): The queried images, best first: COCO image
            entries with ``path`` and, when scored, ``score``.
        classes (Sequence[str]): The dataset's class names.
        selection (dict): What the run resumes from.
    """
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
    return {
        'query.json': lambda path: dump_json_atomic(coco, path),
        'query.txt': lambda path: write_text_atomic('\n'.join(lines) + '\n',
                                                    path),
        'selection.json': lambda path: dump_json_atomic(selection, path),
    }


def write_regions(path: str, round_idx: int, granularity: str, side: int,
                  units: Dict[int, Dict], names: Sequence[str]) -> None:
    """``regions.json`` with every queried unit (as a stream, one image a
    line): per image its ``[y, x, height, width]`` regions in label-map
    pixels and their scores, best first."""
    dump_json_atomic(
        dict(
            round=round_idx,
            granularity=granularity,
            size=side,
            items=(dict(
                index=index,
                name=names[index],
                # [y, x, height, width] in label-map pixels
                regions=[[y, x, side, side]
                         for y, x in np.asarray(chosen['corners']).tolist()],
                scores=np.asarray(chosen['scores'], np.float64).tolist())
                   for index, chosen in units.items())), path)


def write_pixel_summary(path: str, round_idx: int, granularity: str,
                        units: Dict[int, Dict],
                        names: Sequence[str]) -> None:
    """A pixel round's ``regions.json``: each image's count of queried
    pixels and its best and last score (the pixels are in
    ``revealed.npz``)."""
    dump_json_atomic(
        dict(
            round=round_idx,
            granularity=granularity,
            size=1,
            items=(dict(
                index=index,
                name=names[index],
                pixels=len(chosen['scores']),
                best=float(chosen['scores'][0]),
                last=float(chosen['scores'][-1]))
                   for index, chosen in units.items()
                   if len(chosen['scores']))), path)


def save_query_units(path: str, units: Dict[int, Dict]) -> None:
    """The units of a query, compact: pool positions, unit counts, corners
    and scores, best first within each image."""
    positions = sorted(units)
    arrays = dict(
        index=np.asarray(positions, np.int64),
        count=np.asarray([len(units[i]['corners']) for i in positions],
                         np.int64),
        corners=np.concatenate(
            [np.asarray(units[i]['corners'], np.int64).reshape(-1, 2)
             for i in positions]) if positions else np.zeros((0, 2)),
        scores=np.concatenate(
            [np.asarray(units[i]['scores'], np.float64)
             for i in positions]) if positions else np.zeros(0))
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def load_query_units(path: str) -> Dict[int, Dict]:
    """Read :func:`save_query_units`' file."""
    with np.load(path, allow_pickle=False) as data:
        index, counts = data['index'], data['count']
        corners, scores = data['corners'], data['scores']
    if counts.sum() != len(corners) or len(corners) != len(scores):
        raise RuntimeError(f'{path} is damaged: its unit counts disagree')
    ends = np.cumsum(counts)
    return {
        int(i): dict(
            corners=corners[e - c:e].astype(np.int64).reshape(-1, 2),
            scores=scores[e - c:e])
        for i, c, e in zip(index.tolist(), counts.tolist(), ends.tolist())
    }
