# Copyright (c) mmsaal contributors. All rights reserved.
"""Bring a person's labels of the waiting query into the dataset.

With ``active_learning.oracle='human'`` a round stops after writing
``{work_dir}/rounds/query_XX/query.json`` (a COCO image list). Label those
images in any annotation tool, export COCO, then::

    python tools/import_labels.py WORK_DIR LABELS.json
    python tools/train_al.py CONFIG --work-dir WORK_DIR --resume

The labels are matched to the query by ``file_name`` and merged into the
annotation file of the pool (``PoolCocoDataset.ann_file``, created when it
does not exist yet), written atomically after a backup of it
(``{ann_file}.round_XX.bak``).

Every image and box is checked first: an id and a ``file_name`` once each,
each queried image named by one image only, boxes of four finite numbers
inside the image with a positive size, a known category, at most
``--max-boxes`` a image, a file of at most ``--max-mb``. Each problem is
printed with its image and field, and nothing is written when there is
one; ``--skip-invalid`` imports the images without problems and lists the
others (they stay unlabeled: the resumed run waits for them). Labels of
images the query did not list are refused, and so is a query left partly
unlabeled (``--partial`` allows it). ``--replace`` imports labels again
for images already imported in this round.

The run is read from its ``experiment.json`` (data); the work dir's config
is never executed unless it is named with ``--config``.
"""
import argparse
import glob
import json
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

from mmengine.config import Config

from mmsaal.pool import RoundStore, write_text_atomic
from mmsaal.rounds.pool_dataset import pool_dataset_cfg
from mmsaal.utils import WorkDirError, WorkDirLock, experiment_record
from mmsaal.utils.work_dir import unflatten


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('labels', help='COCO annotation file')
    parser.add_argument(
        '--config',
        help="the run's config (executed); by default the run is read from "
        'its experiment.json')
    parser.add_argument(
        '--partial',
        action='store_true',
        help='import even if some queried images are not labeled yet')
    parser.add_argument(
        '--skip-invalid',
        action='store_true',
        help='import the images whose labels pass the checks, list the rest')
    parser.add_argument(
        '--replace',
        action='store_true',
        help='import labels again for images imported earlier this round')
    parser.add_argument('--max-boxes', type=int, default=1000,
                        help='boxes an image may have (default 1000)')
    parser.add_argument('--max-mb', type=float, default=100,
                        help='size of the labels file, MB (default 100)')
    return parser.parse_args()


def read_json(path: str, what: str, max_mb: float = None):
    """A JSON file, refusing NaN / Infinity (which JSON does not have) and,
    with ``max_mb``, a larger file before reading it."""
    try:
        size = osp.getsize(path)
        if max_mb is not None and size > max_mb * 2**20:
            raise SystemExit(
                f'{what} {path} is {size / 2**20:.0f} MB, over --max-mb '
                f'{max_mb:g}: a query\'s labels are far smaller. Check the '
                f'file, or raise --max-mb.')
        with open(path, encoding='utf-8') as f:
            return json.load(f, parse_constant=_no_constant)
    except (OSError, ValueError) as err:
        raise SystemExit(f'cannot read {what} {path}: {err}')


def _no_constant(name: str):
    raise ValueError(f'{name} is not a number JSON knows')


def run_settings(args) -> Tuple[str, dict]:
    """``(state root, pool dataset config)`` of the run: from ``--config``
    when given, else from the run's ``experiment.json``, read as data."""
    if args.config:
        cfg = Config.fromfile(args.config)
        state_dir = (cfg.get('active_learning') or {}).get('state_dir',
                                                           'rounds')
        return osp.join(args.work_dir, state_dir), pool_dataset_cfg(cfg)
    record = experiment_record(args.work_dir)
    flat = read_json(record, 'the experiment record')
    if not isinstance(flat, dict):
        raise SystemExit(f'{record} is damaged: pass --config')
    cfg = Config(unflatten(flat))
    return osp.dirname(record), pool_dataset_cfg(cfg)


def pool_annotation_file(dataset: dict) -> tuple:
    """``(path, classes)`` of the pool's ``PoolCocoDataset``."""
    if not str(dataset.get('type', '')).endswith('PoolCocoDataset'):
        raise SystemExit(
            f'the pool dataset is {dataset.get("type")}: import_labels.py '
            f'writes COCO labels for mmsaal.PoolCocoDataset. For other '
            f'datasets add the label files where the dataset reads them, '
            f'then resume.')
    path = osp.join(dataset.get('data_root') or '', dataset['ann_file'])
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmsaal.datasets import PoolCocoDataset
        classes = PoolCocoDataset.METAINFO['classes']
    return path, list(classes)


# ------------------------------------------------------------- the checks
def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(
        value, bool) and math.isfinite(value)


class Checked:
    """The labels file, checked against the query: the images matched to
    queried ones, and every problem by the label image it belongs to
    (``None``: the file as a whole)."""

    def __init__(self, labels, query: dict, classes: List[str],
                 max_boxes: int) -> None:
        self.problems: Dict = defaultdict(list)
        self.names: Dict = {}  # label image id -> its file_name
        self.matched: Dict = {}  # label image id -> queried image
        self.annotations: Dict = defaultdict(list)  # label image id -> anns
        self.category: Dict = {}  # label category id -> class name
        if not isinstance(labels, dict) or not isinstance(
                labels.get('images'), list):
            self.problems[None].append('it is not a COCO file: no "images" '
                                       'list')
            return
        self._categories(labels, classes)
        self._images(labels, query)
        self._annotations(labels, max_boxes)

    def _categories(self, labels: dict, classes: List[str]) -> None:
        categories = labels.get('categories', [])
        if not isinstance(categories, list):
            self.problems[None].append('"categories" is not a list')
            return
        for j, category in enumerate(categories):
            where = f'categories[{j}]'
            if not isinstance(category, dict) or not is_int(
                    category.get('id')) or not isinstance(
                        category.get('name'), str):
                self.problems[None].append(
                    f'{where}: needs an int "id" and a str "name", got '
                    f'{category!r:.80}')
            elif category['id'] in self.category:
                self.problems[None].append(
                    f'{where}: category id {category["id"]} is listed twice')
            elif category['name'] not in classes:
                self.problems[None].append(
                    f'{where}: the class {category["name"]!r} is not one of '
                    f'the dataset\'s {classes}')
            else:
                self.category[category['id']] = category['name']

    def _images(self, labels: dict, query: dict) -> None:
        queried = {osp.normpath(image['file_name']): image
                   for image in query['images']}
        by_base = {osp.basename(n): image for n, image in queried.items()}
        taken: Dict = {}  # queried file_name -> label image id
        for j, image in enumerate(labels['images']):
            if not isinstance(image, dict) or not is_int(
                    image.get('id')) or not isinstance(
                        image.get('file_name'), str) or not image['file_name']:
                self.problems[None].append(
                    f'images[{j}]: needs an int "id" and a "file_name", got '
                    f'{image!r:.80}')
                continue
            image_id, name = image['id'], image['file_name']
            if image_id in self.names:
                self.problems[None].append(
                    f'images[{j}]: image id {image_id} is listed twice '
                    f'({self.names[image_id]} and {name}): each image needs '
                    f'its own id')
                continue
            self.names[image_id] = name
            found = queried.get(osp.normpath(name)) or by_base.get(
                osp.basename(name))
            if found is None:
                self.problems[image_id].append(
                    'the round did not query this image (only the images '
                    'of its query.json can be imported)')
                continue
            if found['file_name'] in taken:
                other = self.names[taken[found['file_name']]]
                self.problems[None].append(
                    f'{other} and {name} both name the queried image '
                    f'{found["file_name"]}: list each image once')
                continue
            taken[found['file_name']] = image_id
            for key in ('width', 'height'):
                if key in image and found.get(key) is not None and \
                        image[key] != found[key]:
                    self.problems[image_id].append(
                        f'{key} {image[key]!r} is not the image\'s '
                        f'{found[key]}')
            self.matched[image_id] = found

    def _annotations(self, labels: dict, max_boxes: int) -> None:
        annotations = labels.get('annotations', [])
        if not isinstance(annotations, list):
            self.problems[None].append('"annotations" is not a list')
            return
        ids = set()
        for j, ann in enumerate(annotations):
            where = f'annotations[{j}]'
            if not isinstance(ann, dict):
                self.problems[None].append(f'{where}: not an object')
                continue
            image_id = ann.get('image_id')
            if not is_int(image_id) or image_id not in self.names:
                self.problems[None].append(
                    f'{where}: image_id {image_id!r} names no image of the '
                    f'file')
                continue
            if is_int(ann.get('id')):
                if ann['id'] in ids:
                    self.problems[image_id].append(
                        f'{where}: annotation id {ann["id"]} is listed '
                        f'twice')
                ids.add(ann['id'])
            problem = self._box(ann, self.matched.get(image_id, {}))
            if problem:
                self.problems[image_id].append(f'{where}: {problem}')
            else:
                self.annotations[image_id].append(ann)
        for image_id, anns in self.annotations.items():
            if len(anns) > max_boxes:
                self.problems[image_id].append(
                    f'{len(anns)} boxes, over --max-boxes {max_boxes}')

    def _box(self, ann: dict, image: dict) -> str:
        if ann.get('category_id') not in self.category:
            return (f'category_id {ann.get("category_id")!r} is not in the '
                    f'file\'s categories')
        box = ann.get('bbox')
        if not isinstance(box, list) or len(box) != 4 or not all(
                is_number(v) for v in box):
            return f'bbox {box!r:.80} is not 4 finite numbers'
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return f'bbox {box} has no area (width and height must be > 0)'
        width, height = image.get('width'), image.get('height')
        if x < 0 or y < 0 or (width and x + w > width) or (
                height and y + h > height):
            return (f'bbox {box} leaves the image ({width}x{height}: x, y '
                    f'>= 0, x + w <= width, y + h <= height)')
        if 'iscrowd' in ann and ann['iscrowd'] not in (0, 1):
            return f'iscrowd {ann["iscrowd"]!r} is not 0 or 1'
        if 'area' in ann and not (is_number(ann['area'])
                                  and ann['area'] >= 0):
            return f'area {ann["area"]!r} is not a number >= 0'
        segmentation = ann.get('segmentation')
        if isinstance(segmentation, list) and not all(
                isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                and all(is_number(v) for v in p) for p in segmentation):
            return 'segmentation is not a list of polygons of finite numbers'
        return ''

    def lines(self) -> List[str]:
        """Every problem, with its image."""
        out = list(self.problems.get(None, ()))
        for image_id, problems in self.problems.items():
            if image_id is not None:
                out += [f'{self.names[image_id]} (image id {image_id}): {p}'
                        for p in problems]
        return out


# ------------------------------------------------------------- the import
def merge(pool: dict, checked: Checked, images: List[int],
          replace: bool) -> Tuple[int, List[str]]:
    """Add ``images`` (label image ids) and their boxes to ``pool``;
    returns the boxes added and the images replaced."""
    categories = {c['name']: c['id'] for c in pool['categories']}
    labeled = {osp.normpath(image['file_name']): image['id']
               for image in pool['images']}
    replaced = []
    for label_id in images:
        name = checked.matched[label_id]['file_name']
        if osp.normpath(name) in labeled and not replace:
            raise SystemExit(
                f'{name} is labeled already (imported before in this '
                f'round): pass --replace to import its labels again. '
                f'Nothing was written.')
        if osp.normpath(name) in labeled:
            replaced.append(name)
    gone = {labeled[osp.normpath(n)] for n in replaced}
    pool['images'] = [i for i in pool['images'] if i['id'] not in gone]
    pool['annotations'] = [a for a in pool['annotations']
                           if a['image_id'] not in gone]
    next_image = max((i['id'] for i in pool['images']), default=0) + 1
    next_ann = max((a['id'] for a in pool['annotations']), default=0) + 1
    boxes = 0
    for label_id in images:
        queried = checked.matched[label_id]
        image = dict(id=next_image, file_name=queried['file_name'])
        for key in ('width', 'height'):
            if key in queried:
                image[key] = queried[key]
        pool['images'].append(image)
        for ann in checked.annotations.get(label_id, ()):
            pool['annotations'].append(dict(
                ann, id=next_ann, image_id=next_image,
                category_id=categories[checked.category[ann['category_id']]]))
            next_ann += 1
            boxes += 1
        next_image += 1
    return boxes, replaced


def backup(path: str, round_idx: int) -> str:
    """Copy the pool file to ``{path}.round_XX[.N].bak`` before it changes."""
    stem = f'{path}.round_{round_idx:02d}'
    target, n = f'{stem}.bak', 1
    while osp.exists(target):
        n += 1
        target = f'{stem}.{n}.bak'
    with open(path, 'rb') as f:
        data = f.read()
    from mmsaal.utils import write_bytes_atomic
    write_bytes_atomic(data, target)
    return target


def main():
    args = parse_args()
    try:
        with WorkDirLock(args.work_dir, 'tools/import_labels.py'):
            import_labels(args)
    except WorkDirError as err:
        raise SystemExit(f'error: {err}')


def import_labels(args) -> None:
    root, dataset = run_settings(args)
    store = RoundStore(root)
    round_idx = store.pending_query()
    if round_idx is None:
        raise SystemExit(f'no query waits for labels in {store.root}')
    query = read_json(osp.join(store.query_dir(round_idx), 'query.json'),
                      'the query')
    path, classes = pool_annotation_file(dataset)
    labels = read_json(args.labels, 'the labels', args.max_mb)
    checked = Checked(labels, query, classes, args.max_boxes)
    problems = checked.lines()
    if checked.problems.get(None) or (problems and not args.skip_invalid):
        shown = '\n  '.join(problems[:30])
        more = f'\n  ... and {len(problems) - 30} more' if len(
            problems) > 30 else ''
        raise SystemExit(
            f'{args.labels}: {len(problems)} problem(s), nothing was '
            f'written:\n  {shown}{more}\n'
            + ('' if checked.problems.get(None) else
               'Fix them, or pass --skip-invalid to import the other '
               'images.'))
    images = [i for i in checked.matched if i not in checked.problems]
    skipped = sorted({checked.names[i] for i in checked.problems})
    missing = sorted(
        {image['file_name'] for image in query['images']} -
        {checked.matched[i]['file_name'] for i in images})
    if missing and not (args.partial or args.skip_invalid):
        raise SystemExit(
            f'{len(missing)} queried images have no labels in the file, '
            f'e.g. {missing[:5]}. Label them (an image without objects is '
            f'listed with no annotation), or pass --partial. Nothing was '
            f'written.')
    if osp.exists(path):
        pool = read_json(path, 'the pool annotation file')
        if not isinstance(pool, dict) or not all(
                isinstance(pool.get(k), list)
                for k in ('images', 'annotations', 'categories')):
            raise SystemExit(
                f'the pool annotation file {path} is damaged (no images / '
                f'annotations / categories lists): restore it from its '
                f'latest {osp.basename(path)}.round_XX.bak.')
    else:
        pool = dict(images=[], annotations=[], categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(classes)])
    boxes, replaced = merge(pool, checked, images, args.replace)
    saved = backup(path, round_idx) if osp.exists(path) else None
    write_text_atomic(json.dumps(pool), path)
    lines = [f'imported {len(images)} images ({boxes} objects) of round '
             f'{round_idx} into {path}'
             + (f', replacing the labels of {len(replaced)}' if replaced
                else '') + (f'; the file before is {saved}' if saved else '')
             + '.']
    if skipped:
        lines.append(f'skipped {len(skipped)} images, which stay '
                     f'unlabeled:\n  ' + '\n  '.join(
                         f'{n}: {"; ".join(checked.problems[i])}'
                         for i, n in sorted(
                             ((i, checked.names[i])
                              for i in checked.problems if i is not None),
                             key=lambda t: t[1])))
    if missing:
        lines.append(f'{len(missing)} queried images have no labels yet: '
                     f'the resumed run waits for them.')
    configs = glob.glob(osp.join(args.work_dir, '*.py'))
    config = args.config or (configs[0] if len(configs) == 1 else 'CONFIG')
    lines.append(f'Go on with:\n  python tools/train_al.py {config} '
                 f'--work-dir {args.work_dir} --resume')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
