# Copyright (c) mmsaal contributors. All rights reserved.
"""Bring a person's labels of the waiting query into the dataset.

With ``active_learning.oracle='human'`` a round stops after writing
``{work_dir}/rounds/query_XX/query.json`` (a COCO image list). Label those
images in any annotation tool, export COCO, then::

    python tools/import_labels.py WORK_DIR LABELS.json
    python tools/train_al.py CONFIG --work-dir WORK_DIR --resume

The labels are matched to the query by ``file_name`` and written in the
pool's own format: into the annotation file of a ``PoolCocoDataset``
(created when it does not exist yet), as ``Annotations/<id>.xml`` of a
``PoolVOCDataset``; each file atomically, after a backup of what it
replaces (``<file>.round_XX.bak``).

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

An oracle that keeps the labels elsewhere brings them itself, e.g. with
``oracle=dict(type='LabelStudioOracle', ...)`` from the Label Studio
project of the query (``train_al.py --resume`` does the same first)::

    python tools/import_labels.py WORK_DIR --from-oracle

The run is read from its ``experiment.json`` (data); the work dir's config
is never executed unless it is named with ``--config``.
"""
import argparse
import os.path as osp
from typing import Tuple

from mmengine.config import Config

from mmsaal.apis.config import state_root
from mmsaal.datasets.label_files import label_files_of
from mmsaal.oracles import oracle_class, oracle_spec
from mmsaal.pool import RoundStore
from mmsaal.rounds.label_import import Checked, read_json
from mmsaal.rounds.pool_dataset import pool_dataset_cfg
from mmsaal.utils import (DataError, FieldError, WorkDirError, WorkDirLock,
                          experiment_record)
from mmsaal.utils.work_dir import unflatten


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('labels', nargs='?', help='COCO annotation file')
    parser.add_argument(
        '--from-oracle',
        '--label-studio',
        action='store_true',
        help="take the query's labels from where the run's oracle keeps "
        'them: for LabelStudioOracle, the finished annotations of its '
        'project (the token in $LABEL_STUDIO_API_KEY, or the variable '
        'oracle.token_env names)')
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
    args = parser.parse_args()
    if (args.labels is None) == (not args.from_oracle):
        parser.error('give a COCO labels file or --from-oracle (one of '
                     'them)')
    return args


def run_settings(args) -> Tuple[str, dict]:
    """``(state root, pool dataset config)`` of the run: from ``--config``
    when given, else from the run's ``experiment.json``, read as data."""
    if args.config:
        cfg = Config.fromfile(args.config)
        cfg.work_dir = args.work_dir
        args.oracle = (cfg.get('active_learning') or {}).get('oracle')
        return state_root(cfg), pool_dataset_cfg(cfg, scoped=True)
    record = experiment_record(args.work_dir)
    flat = read_json(record, 'the experiment record')
    if not isinstance(flat, dict):
        raise SystemExit(f'{record} is damaged: pass --config')
    cfg = Config(unflatten(flat))
    args.oracle = (cfg.get('active_learning') or {}).get('oracle')
    return osp.dirname(record), pool_dataset_cfg(cfg, scoped=True)


def main():
    args = parse_args()
    try:
        with WorkDirLock(args.work_dir, 'tools/import_labels.py',
                         create=False):
            if args.from_oracle:
                import_from_oracle(args)
            else:
                import_labels(args)
    except (WorkDirError, FieldError, DataError) as err:
        raise SystemExit(f'error: {err}')


def import_from_oracle(args) -> None:
    root, dataset = run_settings(args)
    oracle = args.oracle or 'simulated'
    taken = oracle_class(oracle).take_labels(
        RoundStore(root), dataset, oracle_spec(oracle)[1])
    if taken is None:
        raise SystemExit(f'no query of {root} waits for labels that the '
                         f'oracle {oracle_spec(oracle)[0]!r} keeps '
                         f'elsewhere: import a labels file instead')
    for note in taken.notes:
        print(f'note: {note}')
    print(f'imported {taken.labeled} of the {taken.queried} queried images '
          f'from {taken.source}' + (
              '' if taken.labeled >= taken.queried else
              f'; {taken.queried - taken.labeled} are left to annotate') +
          f'. Go on with:\n  {resume_command(args, RoundStore(root))}')


def resume_command(args, store: RoundStore) -> str:
    """The command that resumes the run: with the config it started with
    (``run.json`` keeps its path), never the work dir's own ``.py``, which
    anyone with write access could have edited."""
    config = args.config or store.run_config() or 'YOUR_CONFIG.py'
    return (f'python tools/train_al.py {config} --work-dir {args.work_dir} '
            f'--resume')


def import_labels(args) -> None:
    root, dataset = run_settings(args)
    store = RoundStore(root)
    round_idx = store.pending_query()
    if round_idx is None:
        raise SystemExit(f'no query waits for labels in {store.root}')
    query = read_json(osp.join(store.query_dir(round_idx), 'query.json'),
                      'the query')
    files = label_files_of(dataset)
    labels = read_json(args.labels, 'the labels', args.max_mb)
    checked = Checked(labels, query, files.classes, args.max_boxes)
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
    written = files.write_boxes(checked, images, args.replace, round_idx)
    lines = [f'imported {len(images)} images ({written.objects} objects) of '
             f'round {round_idx} into {written.where}'
             + (f', replacing the labels of {len(written.replaced)}'
                if written.replaced else '')
             + (f'; what was there before is kept in '
                f'{_listed(written.backups)}' if written.backups else '')
             + ('; it held these labels already: nothing changed'
                if not written.changed else
                f' ({len(images) - written.images} held them already)'
                if written.images < len(images) else '') + '.']
    if checked.clipped:
        lines.append(f'clipped {checked.clipped} boxes that reached less '
                     f'than half a pixel past the image border to the '
                     f'image.')
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
    lines.append(f'Go on with:\n  {resume_command(args, store)}')
    print('\n'.join(lines))


def _listed(paths) -> str:
    return paths[0] if len(paths) == 1 else (
        f'{len(paths)} .bak files beside them, e.g. {paths[0]}')


if __name__ == '__main__':
    main()
