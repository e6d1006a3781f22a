# Copyright (c) mmsaal contributors. All rights reserved.
"""What a round costs at real pool sizes: mmsaal's own round machinery at
chosen sizes, with a stand-in scorer (random scores) in place of the
network.

The real :class:`~mmsaal.rounds.RoundPipeline` runs: candidates, ranking
of every image's units, the pool sampler's selection (top-k, k-means++),
the query, the reveal, the round files, the exported masks, the report,
and then a resume in a fresh process. Only the forward and backward
passes are replaced, by scores drawn from each item's own seed.

Image pools (detection-like items with boxes, 10^4 to 10^6)::

    python tools/misc/scale_sim.py images --pool 1000000 --budget 0.01 \\
        --rounds 10 --diversity

Segmentation pools (label maps of Cityscapes size, written once to
``--data``)::

    python tools/misc/scale_sim.py segmentation --images 2975 \\
        --size 1024 2048 --granularity region --region-size 32 \\
        --budget 0.01 [--pool-wide] [--diversity classes] [--maps smooth]

A shipped config's own settings (granularity, region size, budget, per
image or pool-wide, diversity, ``pool_subset`` and the scoring loader's
batch size and workers, lowered to this machine's cores as
``tools/train_al.py`` lowers them; options given after it win)::

    python tools/misc/scale_sim.py segmentation --images 2975 \\
        --config configs/saal_deeplabv3plus_r101_gta2cityscapes.py

With workers, each segmentation item's loader decodes its label map (a
real pool's loader decodes its image, which costs more), so the workers
compete with the ranking for the cores as they do in a run.

Per round and phase it prints seconds and the peak resident memory above
the process's baseline, the largest round file, and the bytes rank 0 of
1, 2 and 8 ranks would send to the others; then the same for the resume.
The bookkeeping column sums what a round waits for: ``rank`` runs in a
thread beside the next batches' scoring, so it counts only as ``wait``, the
time the round waits for it (with a device scoring, that thread has the
CPU to itself; here the stand-in scorer shares the cores with it, and what
that costs shows in ``score``); ``classes`` (the
report's class histogram of a segmentation round) runs in a thread beside
the next round's training, which the simulation waits for between rounds.
A benchmark: nothing here is asserted.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Dict, List

import numpy as np

PHASES = ('start', 'score', 'candidates', 'rank', 'wait', 'trim', 'table',
          'select',
          'query', 'reveal', 'record', 'classes', 'export', 'report',
          'resume')
NUM_CLASSES = 19


# ------------------------------------------------------------------ memory
def rss() -> int:
    """Resident set size of this process, bytes."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class Meter:
    """Seconds and peak resident memory per phase (memory sampled every
    5 ms, above the baseline taken at construction)."""

    def __init__(self) -> None:
        self.baseline = rss()
        self.seconds: Dict[str, float] = {}
        self.peak: Dict[str, int] = {}
        self._current: List[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop:
            now = rss() - self.baseline
            for phase in self._current:
                self.peak[phase] = max(self.peak.get(phase, 0), now)
            time.sleep(0.005)

    @contextmanager
    def phase(self, name: str):
        self._current.append(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + \
                time.perf_counter() - start
            now = rss() - self.baseline
            self.peak[name] = max(self.peak.get(name, 0), now)
            self._current.remove(name)

    def wrap(self, owner, attribute: str, name: str) -> None:
        """Time ``owner.attribute`` (a function or method) as ``name``."""
        function = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.phase(name):
                return function(*args, **kwargs)

        setattr(owner, attribute, timed)

    def take(self) -> Dict[str, tuple]:
        """The phases measured since the last call, then forget them."""
        out = {k: (self.seconds[k], self.peak.get(k, 0))
               for k in self.seconds}
        self.seconds, self.peak = {}, {}
        return out


# ------------------------------------------------------------------- pools
def item_seed(path: str, seed: int) -> int:
    from mmsaal.adapters.base import instance_seed
    return instance_seed(seed, path)


def detection_pool(size: int):
    """A pool of ``size`` detection items (COCO-like infos with boxes; a
    fifth empty), an mmengine ``BaseDataset`` with serialized infos."""
    from mmengine.dataset import BaseDataset

    class Pool(BaseDataset):
        METAINFO = dict(classes=tuple(f'class{i}' for i in range(80)))

        def load_data_list(self):
            rng = np.random.default_rng(0)
            counts = rng.integers(0, 8, size)
            counts[rng.random(size) < 0.2] = 0
            labels = rng.integers(0, 80, counts.sum()).tolist()
            out, start = [], 0
            for i, n in enumerate(counts.tolist()):
                out.append(dict(
                    img_path=f'data/pool/images/{i:012d}.jpg',
                    img_id=i, height=480, width=640, instances=[
                        dict(bbox=[10.0, 20.0, 110.0, 220.0],
                             bbox_label=label, ignore_flag=0)
                        for label in labels[start:start + n]]))
                start += n
            return out

        def __getitem__(self, index):
            return dict(data_samples=SimpleNamespace(
                img_path=self.get_data_info(index)['img_path']))

    return Pool(ann_file='', data_root='', serialize_data=True,
                lazy_init=False)


def write_label_maps(root: str, count: int, shape) -> List[str]:
    """Street-like label maps (bands of sky, buildings, road and boxes of
    other classes), as Cityscapes ``*_labelTrainIds.png``; written once."""
    import cv2
    folder = osp.join(root, f'labels_{shape[0]}x{shape[1]}')
    os.makedirs(folder, exist_ok=True)
    paths = [osp.join(folder, f'city_{i:06d}_labelTrainIds.png')
             for i in range(count)]
    rng = np.random.default_rng(0)
    height, width = shape
    for i, path in enumerate(paths):
        if osp.exists(path):
            continue
        labels = np.full(shape, 0, np.uint8)  # road
        horizon = int(height * rng.uniform(0.3, 0.5))
        labels[:horizon // 2] = 10  # sky
        labels[horizon // 2:horizon] = 2  # building
        for _ in range(25):
            c = int(rng.integers(0, NUM_CLASSES))
            y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
            h, w = int(rng.integers(8, height // 4)), int(
                rng.integers(8, width // 8))
            labels[y:y + h, x:x + w] = c
        labels[int(height * 0.9):] = 255  # the ego band, ignored
        cv2.imwrite(path, labels)
    return paths


def segmentation_pool(paths: List[str], read: bool = False):
    """The pool as the round machinery sees it: an item per label map."""

    class Pool:
        metainfo = dict(classes=tuple(f'class{i}' for i in range(
            NUM_CLASSES)))

        def __init__(self):
            self.paths = paths
            self.read = read

        def __len__(self):
            return len(self.paths)

        def get_data_info(self, index):
            path = self.paths[index]
            return dict(img_path=path.replace('_labelTrainIds', ''),
                        seg_map_path=path)

        def __getitem__(self, index):
            if self.read:  # a worker's cost: decode what the item is
                import cv2
                cv2.imread(self.paths[index], cv2.IMREAD_UNCHANGED)
            return dict(data_samples=SimpleNamespace(
                img_path=self.get_data_info(index)['img_path'],
                ori_shape=None))

    return Pool()


# ----------------------------------------------------------------- scorers
def stand_in_sampler(shape, maps: str, diversity, seed: int = 0):
    """A pool sampler (top-k or k-means++, as ``diversity`` says) whose
    scores are random: a float per item, or a map per image (``noise``:
    every pixel its own draw; ``smooth``: a coarse draw interpolated, as a
    network's maps are)."""
    import torch
    import torch.nn.functional as F

    from mmsaal.pool_samplers import BasePoolSampler

    class StandIn(BasePoolSampler):

        def score_batch(self, model, data_batch):
            return [np.random.default_rng(item_seed(s.img_path, seed))
                    .random() for s in data_batch['data_samples']]

        def _map(self, path):
            generator = torch.Generator().manual_seed(item_seed(path, seed))
            if maps == 'noise':
                return torch.rand(shape, generator=generator)
            coarse = torch.rand((1, 1, max(shape[0] // 32, 1),
                                 max(shape[1] // 32, 1)),
                                generator=generator)
            return F.interpolate(coarse, shape, mode='bilinear',
                                 align_corners=False)[0, 0]

        def score_maps(self, model, data_batch):
            return [self._map(s.img_path) for s in data_batch['data_samples']]

        def labeled_score_maps(self, model, data_batch):
            out = []
            for s in data_batch['data_samples']:
                generator = torch.Generator().manual_seed(
                    item_seed(s.img_path, seed + 1))
                coarse = torch.randint(0, NUM_CLASSES,
                                       (1, 1, shape[0] // 64,
                                        shape[1] // 64),
                                       generator=generator).float()
                labels = F.interpolate(coarse, shape)[0, 0].long()
                out.append((self._map(s.img_path), labels))
            return out

    return StandIn(diversity=diversity)


# ---------------------------------------------------------------- the run
def make_pool(args):
    if args.task == 'images':
        return detection_pool(args.pool)
    return segmentation_pool(
        write_label_maps(args.data, args.images, tuple(args.size)),
        read=args.num_workers > 0)


def build(args, pool, work_dir: str, meter: Meter):
    """The round pipeline over ``pool``; its start is timed."""
    import mmsaal.rounds.pipeline as pipeline_module
    import mmsaal.rounds.record as record_module
    import mmsaal.rounds.score as score_module
    from mmsaal.oracles import LabelingContext, SimulatedOracle
    from mmsaal.pool import PixelLabels, PoolState, RoundStore
    from mmsaal.pool_samplers import RandomSampler
    from mmsaal.rounds import (ImageUnits, PixelUnits, RoundPipeline,
                               RoundRecorder)
    from mmsaal.rounds.pool_dataset import PoolItems
    store = RoundStore(osp.join(work_dir, 'rounds'))
    diversity = {'none': False, 'scores': True,
                 'classes': 'classes'}[args.diversity]
    shape = None if args.task == 'images' else tuple(args.size)
    with meter.phase('start'):
        # As build_round_pipeline does.
        items = PoolItems.of(pool)
        if args.task == 'images':
            state = PoolState(items.names, seed=0)
            units = ImageUnits(args.budget)
        else:
            state = PoolState(items.names, seed=0, pixels=True)
            labels = PixelLabels(items.paths, store.mask_dir,
                                 [shape] * len(pool))
            units = PixelUnits(args.granularity, args.region_size,
                               not args.pool_wide, args.budget, labels)
        oracle = SimulatedOracle(LabelingContext(pool, items=items))
    sampler = RandomSampler() if args.random else stand_in_sampler(
        shape, args.maps, diversity)
    recorder = RoundRecorder(store, state, units, pool, work_dir,
                             'scale simulation')
    pipeline = RoundPipeline(
        sampler, units, oracle, state, store, recorder, lambda: pool,
        pool_subset=args.subset,
        pool_dataloader=dict(batch_size=args.batch_size,
                             num_workers=args.num_workers))
    # What each step of a round costs.
    meter.scored = {}
    score = pipeline.score

    def keep_candidates(sampler, model, candidates):
        meter.scored['candidates'] = candidates
        return score(sampler, model, candidates)

    pipeline.score = keep_candidates
    trim = units.trim

    def keep_scored(scored):
        meter.scored['all'] = scored
        with meter.phase('trim'):
            return trim(scored)

    units.trim = keep_scored
    meter.wrap(units, 'candidates', 'candidates')
    meter.wrap(units, 'table', 'table')
    # A batch's maps are read side by side in threads, then its regions
    # picked: the wall time of both, in the thread that ranks beside the
    # next batches' scoring; 'wait' is what the round waits for it.
    if args.task != 'images':
        meter.wrap(units, 'rank_maps', 'rank')
        meter.wrap(score_module, 'wait_for', 'wait')
    meter.wrap(pipeline_module, 'pick_units', 'select')
    meter.wrap(units, 'query', 'query')
    meter.wrap(units, 'reveal', 'reveal')
    meter.wrap(recorder, 'save_round', 'record')
    meter.wrap(record_module, 'pixel_class_histogram', 'classes')
    meter.wrap(units, 'export', 'export')
    meter.wrap(recorder, 'report', 'report')
    meter.wrap(pipeline, 'score', 'score')
    return pipeline, oracle


def quiet_progress() -> None:
    """No progress bar over the scoring of a million stand-in items."""
    import mmsaal.rounds.score as score

    class Silent:

        def __init__(self, *args, **kwargs):
            self.file = open(os.devnull, 'w')

        def update(self, *args):
            pass

    score.ProgressBar = Silent


def files_of(folder: str):
    sizes = {name: osp.getsize(osp.join(folder, name))
             for name in os.listdir(folder)}
    return max(sizes.items(), key=lambda kv: kv[1])


def sent_bytes(units, scored: list, candidates, batch_size: int,
               world_size: int) -> int:
    """What rank 0 of ``world_size`` sends in the gather of a round."""
    from mmsaal.rounds.score import make_batches, trim_results
    batches = make_batches(candidates, batch_size)
    local, start = {}, 0
    for b, batch in enumerate(batches):
        local[b] = scored[start:start + len(batch)]
        start += len(batch)
    mine = {b: local[b] for b in range(0, len(batches), world_size)}
    return len(pickle.dumps(trim_results(mine, units.trim), protocol=4))


def simulate(args) -> None:
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='scale_sim_')
    if osp.isdir(osp.join(work_dir, 'rounds')):
        shutil.rmtree(osp.join(work_dir, 'rounds'))
    import torch
    torch.set_num_threads(args.threads)
    quiet_progress()
    pool = make_pool(args)
    meter = Meter()  # the dataset's own memory is not the rounds'
    pipeline, oracle = build(args, pool, work_dir, meter)
    with meter.phase('start'):
        oracle.check_pool(pipeline.state)
        initial = args.initial if args.task == 'images' else 0
        pipeline.label_initial_set(
            int(initial * pipeline.state.pool_size)
            if isinstance(initial, float) else initial,
            may_start_empty=args.task != 'images')
    rows = [('start', meter.take(), None, {})]
    print_row(*rows[-1], flush=True)
    model = torch.nn.Module()
    for round_idx in range(1, args.rounds + 1):
        meter.scored.clear()
        pipeline.run(round_idx, model, round_idx)
        # The classes a segmentation round queried are counted in a thread
        # beside the next round's training: wait for them as it would.
        pipeline.recorder.wait()
        phases = meter.take()
        folder = pipeline.store.round_dir(round_idx)
        sent = {}
        if 'all' in meter.scored:
            for world in (1, 2, 8):
                sent[world] = sent_bytes(
                    pipeline.units, meter.scored['all'],
                    meter.scored['candidates'], args.batch_size, world)
        rows.append((f'round {round_idx}', phases, files_of(folder), sent))
        print_row(*rows[-1], flush=True)
    resumed = resume_in_subprocess(args, work_dir)
    rows.append(('resume', resumed, None, {}))
    print_row(*rows[-1])
    meter._stop = True
    print_table(args, rows, work_dir)
    if not args.keep:
        shutil.rmtree(osp.join(work_dir, 'rounds'), ignore_errors=True)


def resume(args) -> None:
    """The resume of a simulated run, in this (fresh) process; prints its
    phases as JSON."""
    import torch
    torch.set_num_threads(args.threads)
    quiet_progress()
    pool = make_pool(args)
    meter = Meter()
    with meter.phase('resume'):
        pipeline, _ = build(args, pool, args.work_dir, meter)
        pipeline.resume()
        pipeline.recorder.report()
    print('RESUME ' + json.dumps({k: list(v) for k, v in meter.take().items()
                                  if k in ('resume', 'export', 'report')}))


def resume_in_subprocess(args, work_dir: str) -> Dict[str, tuple]:
    command = [sys.executable, osp.abspath(__file__), '--resume-only',
               '--work-dir', work_dir] + [a for a in sys.argv[1:]
                                          if a != '--keep']
    result = subprocess.run(command, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        if line.startswith('RESUME '):
            return {k: tuple(v) for k, v in json.loads(line[7:]).items()}
    raise SystemExit(f'the resume failed:\n{result.stdout[-3000:]}\n'
                     f'{result.stderr[-3000:]}')


def mb(n: int) -> str:
    return f'{n / 2**20:.1f}'


def print_row(name, phases, largest, sent, flush=False) -> None:
    parts = [f'{p} {phases[p][0]:.2f}s/{mb(phases[p][1])}MB'
             for p in PHASES if p in phases]
    if largest:
        parts.append(f'largest file {largest[0]} {mb(largest[1])}MB')
    if sent:
        parts.append('rank 0 sends ' + ', '.join(
            f'{mb(v)}MB of {w}' for w, v in sent.items()))
    print(f'{name}: ' + '; '.join(parts), flush=flush)


def print_table(args, rows, work_dir) -> None:
    """A markdown table: one row per round (seconds, peak MB above the
    baseline), the bookkeeping (everything but the stand-in scorer)."""
    phases = [p for p in PHASES if any(p in r[1] for r in rows)]
    print(f'\n{describe(args)}')
    print('| round | ' + ' | '.join(f'{p} s (MB)' for p in phases) +
          ' | bookkeeping s | largest file MB | rank 0 of 8 sends MB |')
    print('|' + '---|' * (len(phases) + 4))
    for name, measured, largest, sent in rows:
        cells = [f'{measured[p][0]:.2f} ({mb(measured[p][1])})'
                 if p in measured else '' for p in phases]
        # wait and trim sit inside score, select inside the round's query;
        # rank runs beside the scoring (what it holds the round up is
        # wait); classes run beside the next round's training.
        keeping = sum(measured[p][0] for p in (
            'candidates', 'wait', 'trim', 'table', 'select', 'query',
            'reveal', 'record') if p in measured)
        print(f'| {name} | ' + ' | '.join(cells) +
              f' | {keeping:.2f} | {mb(largest[1]) if largest else ""} | '
              f'{mb(sent[8]) if sent else ""} |')
    total = 0
    for root, _, files in os.walk(osp.join(work_dir, 'rounds')):
        total += sum(osp.getsize(osp.join(root, f)) for f in files)
    print(f'rounds/ holds {mb(total)} MB')


def describe(args) -> str:
    if args.task == 'images':
        return (f'image pool of {args.pool:,} items, budget {args.budget}, '
                f'diversity={args.diversity}, subset={args.subset}')
    return (f'{args.images:,} label maps of {args.size[0]}x{args.size[1]}, '
            f'{args.granularity} ({args.region_size}px) at {args.budget} a '
            f'round, {"pool-wide" if args.pool_wide else "per image"}, '
            f'diversity={args.diversity}, subset={args.subset}, '
            f'{args.maps} maps, batch_size={args.batch_size}, '
            f'num_workers={args.num_workers}' +
            (f', as {args.config}' if args.config else ''))


def from_config(parser, argv) -> argparse.Namespace:
    """The arguments with ``--config``'s ``active_learning`` settings as
    the defaults (what the command line gives wins)."""
    from mmengine.config import Config

    from mmsaal.apis.config import machine_cores
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    fields = cfg.get('active_learning') or {}
    sampler = fields.get('pool_sampler') or {}
    granularity = fields.get('granularity', 'image')
    if (granularity == 'image') != (args.task == 'images'):
        raise SystemExit(f'{args.config} queries {granularity}s: simulate '
                         f'it with the task '
                         f'{"images" if granularity == "image" else "segmentation"}')
    loader = fields.get('pool_dataloader') or {}
    defaults = dict(
        budget=fields.get('budget', args.budget),
        diversity={False: 'none', True: 'scores', 'classes': 'classes'}[
            sampler.get('diversity', False)],
        subset=fields.get('pool_subset'),
        batch_size=loader.get('batch_size', 1),
        num_workers=min(loader.get('num_workers', 0), machine_cores()))
    if granularity != 'image':
        defaults.update(granularity=granularity,
                        region_size=fields.get('region_size', 32),
                        pool_wide=not fields.get('budget_per_image', True))
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=['images', 'segmentation'])
    parser.add_argument('--pool', type=int, default=100_000,
                        help='images: pool items')
    parser.add_argument('--initial', type=float, default=0.01,
                        help='images: initial fraction')
    parser.add_argument('--images', type=int, default=2975,
                        help='segmentation: label maps')
    parser.add_argument('--size', type=int, nargs=2, default=(1024, 2048))
    parser.add_argument('--granularity', choices=['region', 'pixel'],
                        default='region')
    parser.add_argument('--region-size', type=int, default=32)
    parser.add_argument('--budget', type=float, default=0.01)
    parser.add_argument('--pool-wide', action='store_true')
    parser.add_argument('--diversity', choices=['none', 'scores', 'classes'],
                        default='none')
    parser.add_argument('--random', action='store_true',
                        help='images: RandomSampler (no scores)')
    parser.add_argument('--maps', choices=['noise', 'smooth'],
                        default='noise')
    parser.add_argument('--subset', type=float, default=None)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--num-workers', type=int, default=0,
                        help='the scoring loader\'s workers')
    parser.add_argument('--config',
                        help='take the round settings of this config\'s '
                        'active_learning (see the module\'s help)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--data', default='data/scale_sim',
                        help='segmentation: where the label maps are kept')
    parser.add_argument('--work-dir')
    parser.add_argument('--keep', action='store_true',
                        help='keep the round files')
    parser.add_argument('--resume-only', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config:
        args = from_config(parser, sys.argv[1:])
    if args.task == 'images':
        args.batch_size = max(args.batch_size, 1000)
    return args


def main():
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    args = parse_args()
    if args.resume_only:
        resume(args)
    else:
        simulate(args)


if __name__ == '__main__':
    main()
