# Copyright (c) mmsaal contributors. All rights reserved.
"""Take a round's finished annotations back from Label Studio into the
pool's own label files (see ``mmsaal.datasets.label_files``): boxes into
VOC XMLs or a COCO file, polygons into label maps, a class choice by
moving the image into its class folder. Matched by each task's own data;
an image annotated twice gives its latest annotation; one the round did
not query is reported and left out; pulling again changes nothing."""
import json
import os.path as osp
import time
from typing import List, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from mmsaal.datasets.label_files import label_files_of
from mmsaal.pool import IGNORE_INDEX, RoundStore
from mmsaal.rounds.label_import import Checked
from mmsaal.utils.errors import WorkDirError
from .client import TOKEN_ENV, LabelStudioClient, LabelStudioError

#: The query folder's record of where its tasks are (never the token).
RECORD = 'label_studio.json'


def read_record(store: RoundStore, round_idx: int) -> dict:
    path = osp.join(store.query_dir(round_idx), RECORD)
    if not osp.exists(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def pull(store: RoundStore, pool_cfg: dict, token_env: str = TOKEN_ENV
         ) -> Optional[Tuple[int, int, List[str]]]:
    """Bring the finished annotations of the waiting query into the
    dataset. Returns ``(annotated, queried, notes)``, or None when no query
    waits in Label Studio. Nothing is written unless every annotation
    taken converts."""
    round_idx = store.pending_query()
    record = read_record(store, round_idx) if round_idx is not None else {}
    if not record:
        return None
    folder = store.query_dir(round_idx)
    with open(osp.join(folder, 'query.json'), encoding='utf-8') as f:
        coco = json.load(f)
    client = LabelStudioClient(record['url'], token_env)
    if client.project(record['project']) is None:
        raise LabelStudioError(
            f'the Label Studio project {record["title"]!r} (id '
            f'{record["project"]}) of round {round_idx} is gone from '
            f'{record["url"]}. To label the round again, delete '
            f'{osp.join(folder, RECORD)} and resume: its project and tasks '
            f'are made again (the labeled set is as it was).')
    images = {int(image['id']): image for image in coco['images']}
    latest, notes = {}, []
    ignored = 0
    for task in client.tasks(record['project']):
        data = task.get('data', {})
        done = [a for a in task.get('annotations', [])
                if not a.get('was_cancelled')]
        if not done:
            continue
        index = data.get('mmsaal_index')
        if data.get('mmsaal_run') != record['run'] or data.get(
                'mmsaal_round') != round_idx or index not in images:
            ignored += 1
            continue
        chosen = max(done, key=lambda a: (a.get('updated_at') or '',
                                          a.get('id', 0)))
        if index in latest:
            notes.append(f'{images[index]["file_name"]} has two tasks; the '
                         f'one annotated last counts')
            if (chosen.get('updated_at') or '') < (
                    latest[index].get('updated_at') or ''):
                continue
        latest[index] = chosen
    if ignored:
        notes.append(f'{ignored} annotated tasks are not of this round\'s '
                     f'query (another round, run or image): left out')
    files = label_files_of(pool_cfg)
    if files.kind == 'class':
        changed = _write_classes(latest, images, files, round_idx)
    elif files.kind == 'maps':
        changed = _write_label_maps(latest, images, coco, files, round_idx)
    else:
        changed = _write_boxes(latest, images, coco, files, round_idx)
    if latest and not changed:
        notes.append('the dataset holds these labels already: nothing '
                     'changed')
    return len(latest), len(images), notes


def _size(image: dict) -> Tuple[int, int]:
    if image.get('height') and image.get('width'):
        return int(image['height']), int(image['width'])
    from PIL import Image
    with Image.open(image['path']) as opened:
        return opened.height, opened.width


def _write_boxes(latest: dict, images: dict, coco: dict, files,
                 round_idx: int) -> bool:
    """The annotated boxes into the pool's label ``files`` (checked as
    ``tools/import_labels.py`` checks a file); False when they held them
    already (nothing written)."""
    classes = files.classes
    labels = dict(images=[], annotations=[], categories=[
        dict(id=i + 1, name=name) for i, name in enumerate(classes)])
    for index, annotation in latest.items():
        image = images[index]
        height, width = _size(image)
        labels['images'].append(dict(id=index, file_name=image['file_name'],
                                     width=width, height=height))
        for item in annotation.get('result', []):
            if item.get('type') != 'rectanglelabels' or item.get(
                    'from_name') != 'label':
                continue
            value = item['value']
            if value.get('rotation'):
                raise LabelStudioError(
                    f'a box of {image["file_name"]} is rotated '
                    f'({value["rotation"]} degrees): mmdet boxes are upright. '
                    f'Straighten it in Label Studio, then resume.')
            name = value['rectanglelabels'][0]
            if name not in classes:
                raise LabelStudioError(
                    f'{image["file_name"]} (Label Studio task '
                    f'{annotation.get("task", "?")}): a box is labeled '
                    f'{name!r}, which is not one of the classes {classes}. '
                    f'Relabel it in Label Studio with one of them (the '
                    f'names of the project\'s label config), then resume. '
                    f'Nothing was written.')
            box = [value['x'] * width / 100, value['y'] * height / 100,
                   value['width'] * width / 100,
                   value['height'] * height / 100]
            labels['annotations'].append(dict(
                id=len(labels['annotations']) + 1, image_id=index,
                category_id=classes.index(name) + 1, bbox=box,
                area=box[2] * box[3], iscrowd=0))
    query = dict(images=[dict(image, id=int(image['id']))
                         for image in coco['images']])
    checked = Checked(labels, query, classes, max_boxes=10_000)
    problems = checked.lines()
    if problems:
        raise LabelStudioError(
            'the Label Studio annotations do not convert (nothing was '
            'written): ' + '; '.join(problems[:10]) + '. Fix them in Label '
            'Studio, then resume.')
    return files.write_boxes(checked, list(checked.matched), True,
                             round_idx).changed


def _write_classes(latest: dict, images: dict, files, round_idx: int
                   ) -> bool:
    """Each annotated image's chosen class into the pool (the image moved
    into its class's folder); False when every one is there already."""
    chosen = {}
    for index, annotation in latest.items():
        image = images[index]
        found = [item['value']['choices'] for item in annotation.get(
            'result', []) if item.get('type') == 'choices'
            and item.get('value', {}).get('choices')]
        if len(found) != 1 or len(found[0]) != 1:
            raise LabelStudioError(
                f'{image["file_name"]} (Label Studio task '
                f'{annotation.get("task", "?")}) has {len(found)} class '
                f'choices: choose one class, then resume. Nothing was '
                f'written.')
        chosen[image['file_name']] = found[0][0]
    try:
        return files.write_classes(chosen, round_idx).changed
    except WorkDirError as err:
        raise LabelStudioError(f'{err} Fix it in Label Studio, then '
                               f'resume.') from None


def _write_label_maps(latest: dict, images: dict, coco: dict, files,
                      round_idx: int) -> bool:
    """The annotated polygons into each image's label map (its other
    pixels as they were, or unlabeled), through the pool's ``LabelMaps``
    (what a map replaces is kept as a ``.bak`` beside it); False when every
    map holds them already (nothing written)."""
    classes = [c['name'] for c in sorted(coco['categories'],
                                         key=lambda c: c['id'])]
    maps = {}
    for index, annotation in latest.items():
        image = images[index]
        target = image.get('seg_map_path')
        if not target:
            raise LabelStudioError(
                f'the query lists no label map path for {image["file_name"]}'
                f': region queries need a dataset that reads label maps.')
        height, width = _size(image)
        labels = cv2.imread(target, cv2.IMREAD_UNCHANGED) if osp.exists(
            target) else None
        before = labels
        if labels is None or labels.shape != (height, width):
            labels = np.full((height, width), IGNORE_INDEX, np.uint8)
        else:
            labels = labels.copy()
        for item in annotation.get('result', []):
            if item.get('type') != 'polygonlabels':
                continue
            name = item['value']['polygonlabels'][0]
            if name not in classes:
                raise LabelStudioError(
                    f'{image["file_name"]}: the class {name!r} is not one of '
                    f'the dataset\'s {classes}. Fix it in Label Studio, then '
                    f'resume.')
            points = np.asarray(item['value']['points'], np.float64)
            points = np.round(points * [width / 100, height / 100] -
                              0.5).astype(np.int32)
            cv2.fillPoly(labels, [points], int(classes.index(name)))
        if before is None or before.shape != labels.shape or \
                before.dtype != labels.dtype or (before != labels).any():
            maps[target] = labels
    return files.write_maps(maps, round_idx).changed


def pull_until_done(store: RoundStore, pool_cfg: dict, token_env: str,
                    wait: float = 0, poll: float = 10
                    ) -> Optional[Tuple[int, int, List[str]]]:
    """:func:`pull`, again every ``poll`` seconds for up to ``wait``
    seconds while images are left, with a progress line. Returns the last
    pull's result."""
    start = time.time()
    while True:
        result = pull(store, pool_cfg, token_env)
        if result is None:
            return None
        annotated, queried, notes = result
        for note in notes:
            print_log(f'Label Studio: {note}.', logger='current')
        print_log(f'Label Studio: {annotated} of {queried} images of round '
                  f'{store.pending_query()} annotated.', logger='current')
        if annotated >= queried or time.time() - start >= wait:
            return result
        time.sleep(min(poll, max(0.0, wait - (time.time() - start))))
