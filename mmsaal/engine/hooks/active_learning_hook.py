# Copyright (c) mmsaal contributors. All rights reserved.
import copy
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsaal.datasets.samplers import LabeledSetSampler
from mmsaal.engine.human_oracle import (ORACLES, AwaitingLabels,
                                        labels_present, query_files,
                                        waiting_message)
from mmsaal.engine.pixel_query import (PixelQuery, check_unique_stems,
                                       image_shapes)
from mmsaal.engine.pool_dataset import build_pool_dataset, item_names
from mmsaal.engine.report import (pixel_class_histogram, round_rows,
                                  write_report)
from mmsaal.engine.scoring import score_candidates, unwrap_model
from mmsaal.pool import (UNLABELED, PoolState, RoundStore, draw_initial_set,
                         read_initial_file)
from mmsaal.regions import GRANULARITIES
from mmsaal.registry import HOOKS, POOL_SAMPLERS


@HOOKS.register_module()
class ActiveLearningHook(Hook):
    """Run pool-based active learning inside an epoch-based training.

    Training goes in rounds of ``epochs_per_round`` epochs. Round 0 trains on
    the initial labeled set; at the start of every later round the hook
    scores the unlabeled pool with ``pool_sampler``, labels ``budget`` items
    (in simulation their ground truth is revealed) and training goes on with
    the larger set. The state of the pool is written after every round to
    ``{work_dir}/{state_dir}/round_XX/`` (atomically); ``--resume`` restarts
    from the latest round and checkpoint without losing or duplicating a
    label.

    The train dataloader must use ``sampler=dict(type='mmsaal.LabeledSetSampler')``
    and ``train_cfg.max_epochs`` must be ``(num_rounds + 1) *
    epochs_per_round``.

    Args:
        pool_sampler (dict | str): Config of the acquisition strategy, from
            the ``POOL_SAMPLERS`` registry, or only its name (its defaults).
            Defaults to ``dict(type='RandomSampler')``.
        initial_labeled (int | float): Size of the initial labeled set, a
            count (int) or a fraction of the pool (float). Defaults to 0.05.
        initial_labeled_file (str, optional): A JSON list or text file of
            pool positions or image paths to use as the initial set instead.
            Defaults to None.
        budget (int | float): Items labeled per round, a count (int) or a
            fraction of the pool (float). Defaults to 0.025.
        num_rounds (int): Number of acquisition rounds after round 0.
            Defaults to 5.
        epochs_per_round (int): Training epochs per round. Defaults to 1.
        pool_subset (int | float, optional): Score only a random subset of
            the unlabeled items each round (count or fraction of the
            unlabeled items), as SAAL's reference does to bound the cost.
            Defaults to None (score them all).
        reset_each_round (bool): Start every round from the weights,
            optimizer state and LR schedule that training started with,
            instead of fine-tuning the last round's model. Defaults to False.
        seed (int): Seed of the initial draw, the subsets and the random
            picks. Defaults to 0.
        pool_dataloader (dict): ``batch_size`` and ``num_workers`` of the
            scoring passes. Defaults to ``dict(batch_size=2, num_workers=0)``.
        pool_pipeline (list[dict], optional): Pipeline of the pool items
            while scoring. Defaults to None: the test dataloader's pipeline
            without its annotation loading (scoring never sees labels).
        state_dir (str): Folder under ``work_dir`` for the round files.
            Defaults to ``'rounds'``.
        granularity (str): What a query labels: ``'image'`` (whole items),
            or for segmentation ``'region'`` (square windows) or ``'pixel'``,
            revealed through ``LoadRevealedAnnotations``. For regions and
            pixels ``budget`` is a fraction of the pool's pixels per round.
            Defaults to ``'image'``.
        region_size (int): Side of a region, in label-map pixels. Defaults
            to 32.
        budget_per_image (bool): Regions/pixels: give every image the same
            share of the budget (RIPU's setting) instead of ranking units
            over the whole pool. Defaults to True.
        oracle (str): Who labels a query. ``'simulated'``: the dataset's
            ground truth is revealed. ``'human'``: the query is written to
            ``{state_dir}/query_XX/`` (a COCO image list and a path list
            with scores; ``regions.json`` for region and pixel queries) and
            the run stops cleanly until its labels are in the dataset
            (``tools/import_labels.py``, or label maps that cover the
            queried regions), then ``--resume`` goes on; the initial set is
            then every item labeled at the start. Defaults to
            ``'simulated'``.

    With a ``ConcatDataset`` of labeled parts and a pool
    (``LabeledSetSampler.pool_index``, domain adaptation), the pool is that
    part, and ``initial_labeled=0`` starts from the labeled parts alone.
    """

    priority = 'NORMAL'

    def __init__(self,
                 pool_sampler: Optional[Union[dict, str]] = None,
                 initial_labeled: Union[int, float] = 0.05,
                 initial_labeled_file: Optional[str] = None,
                 budget: Union[int, float] = 0.025,
                 num_rounds: int = 5,
                 epochs_per_round: int = 1,
                 pool_subset: Optional[Union[int, float]] = None,
                 reset_each_round: bool = False,
                 seed: int = 0,
                 pool_dataloader: Optional[dict] = None,
                 pool_pipeline: Optional[List[dict]] = None,
                 state_dir: str = 'rounds',
                 granularity: str = 'image',
                 region_size: int = 32,
                 budget_per_image: bool = True,
                 oracle: str = 'simulated') -> None:
        self.pool_sampler = build_pool_sampler(
            pool_sampler or dict(type='RandomSampler'))
        if initial_labeled != 0:
            _check_amount('initial_labeled', initial_labeled)
        _check_amount('budget', budget)
        if pool_subset is not None:
            _check_amount('pool_subset', pool_subset)
        if not isinstance(num_rounds, int) or num_rounds < 0:
            raise ValueError(f'ActiveLearningHook.num_rounds must be an int '
                             f'>= 0, got {num_rounds!r}')
        if not isinstance(epochs_per_round, int) or epochs_per_round < 1:
            raise ValueError(f'ActiveLearningHook.epochs_per_round must be '
                             f'an int >= 1, got {epochs_per_round!r}')
        if granularity not in GRANULARITIES:
            raise ValueError(f'ActiveLearningHook.granularity must be one '
                             f'of {GRANULARITIES}, got {granularity!r}')
        if not isinstance(region_size, int) or region_size < 1:
            raise ValueError(f'ActiveLearningHook.region_size must be an '
                             f'int >= 1, got {region_size!r}')
        if granularity != 'image' and not isinstance(budget, float):
            raise ValueError(
                f'ActiveLearningHook.budget={budget!r}: with '
                f"granularity='{granularity}' the budget is a fraction of the "
                f'pool\'s pixels per round, e.g. budget=0.01 (a float).')
        if oracle not in ORACLES:
            raise ValueError(f'ActiveLearningHook.oracle must be one of '
                             f'{ORACLES}, got {oracle!r}')
        self.oracle = oracle
        self.granularity = granularity
        self.region_size = region_size
        self.budget_per_image = budget_per_image
        self.pixel_query: Optional[PixelQuery] = None
        self._shapes: Optional[List] = None
        self.initial_labeled = initial_labeled
        self.initial_labeled_file = initial_labeled_file
        self.budget = budget
        self.num_rounds = num_rounds
        self.epochs_per_round = epochs_per_round
        self.pool_subset = pool_subset
        self.reset_each_round = reset_each_round
        self.seed = seed
        self.pool_dataloader = dict(batch_size=2, num_workers=0)
        self.pool_dataloader.update(pool_dataloader or {})
        self.pool_pipeline = pool_pipeline
        self.state_dir = state_dir
        self.state: Optional[PoolState] = None
        self.train_pool = None
        self._pool_dataset = None
        self._initial_state: Optional[dict] = None
        self._train_started: Optional[float] = None
        self._train_seconds = 0.0

    # ----------------------------------------------------------------- hooks
    def before_run(self, runner) -> None:
        """Find the pool and load (or start) its state."""
        self.sampler = find_labeled_set_sampler(runner.train_dataloader)
        self.store = RoundStore(osp.join(runner.work_dir, self.state_dir))
        self.train_pool = self.sampler.pool
        self.state = PoolState(item_names(self.train_pool), seed=self.seed)
        self._check_amounts()
        if self.granularity != 'image':
            check_unique_stems(self._paths())
            self.pixel_query = PixelQuery(self.granularity, self.region_size,
                                          self.budget_per_image, self.store)
        if self.store.rounds():
            if not runner._resume:
                raise RuntimeError(
                    f'{self.store.root} already holds the rounds of an '
                    f'active-learning run. Continue it with --resume, or '
                    f'start a new one with another --work-dir.')
            latest = self.store.load_latest(self.state)
            if self.pixel_query is not None:
                self.pixel_query.restore(self.state, latest)
                if is_main_process():
                    self.pixel_query.export_masks(self._paths())
                barrier()
            print_log(
                f'Active learning resumed at round {latest}: '
                f'{self.state.num_labeled} of {self.state.pool_size} items '
                f'labeled.', logger='current')
        else:
            self._check_ground_truth()
            self._label_initial_set(runner)
        self._update_train_set(runner)

    def before_train(self, runner) -> None:
        expected = (self.num_rounds + 1) * self.epochs_per_round
        if runner.max_epochs != expected:
            raise ValueError(
                f'train_cfg.max_epochs is {runner.max_epochs} but '
                f'ActiveLearningHook runs (num_rounds + 1) * epochs_per_round '
                f'= ({self.num_rounds} + 1) * {self.epochs_per_round} = '
                f'{expected} epochs: set train_cfg.max_epochs={expected}.')
        if self.reset_each_round:
            self._initial_state = self._load_or_save_initial_state(runner)

    def before_train_epoch(self, runner) -> None:
        """Query at the start of each round after the first."""
        epoch = runner.epoch
        self._train_started = time.perf_counter()
        if epoch == 0 or epoch % self.epochs_per_round:
            return
        round_idx = epoch // self.epochs_per_round
        if round_idx > self.num_rounds or round_idx <= self.state.round:
            return  # done already (resumed after it was written)
        self.query(runner, round_idx)
        if self.reset_each_round:
            self._reset_training(runner)
        self._train_seconds = 0.0
        self._train_started = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        if self._train_started is not None:
            self._train_seconds += time.perf_counter() - self._train_started
        ends_round = (runner.epoch + 1) % self.epochs_per_round == 0
        if (ends_round and runner.epoch + 1 < runner.max_epochs
                and self._pool_is_empty()):
            print_log(
                f'The pool is empty: all {self.state.pool_size} items are '
                f'labeled after round {self.state.round}. Active learning '
                f'ends here.', logger='current')
            runner.train_loop.stop_training = True

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Record the validation metrics of the current round's model."""
        if not metrics or not is_main_process():
            return
        record = dict(
            round=self.state.round,
            epoch=runner.epoch,
            num_labeled=self.state.num_labeled,
            labeled_fraction=self.state.num_labeled / self.state.pool_size,
            train_seconds=round(self._train_seconds, 3),
            **self._pixel_fraction(),
            metrics={k: _to_builtin(v)
                     for k, v in metrics.items()})
        self.store.write_metrics(self.state.round, record)
        scalars = {
            'active_learning/labeled': self.state.num_labeled,
            'active_learning/labeled_fraction': record['labeled_fraction'],
        }
        if 'labeled_pixel_fraction' in record:
            scalars['active_learning/labeled_pixel_fraction'] = record[
                'labeled_pixel_fraction']
        scalars.update({
            f'active_learning/{k}': v
            for k, v in record['metrics'].items()
            if isinstance(v, (int, float))
        })
        runner.visualizer.add_scalars(scalars, step=self.state.round)
        self.write_report(runner)

    def write_report(self, runner) -> List[Dict]:
        """Write ``report.{md,json,csv}`` in the work dir.

        Returns:
            list[dict]: The report's rows, one per round.
        """
        rows = round_rows(self.store, self.state, self.train_pool)
        write_report(runner.work_dir, rows,
                     title=f'Active learning: {runner.experiment_name}')
        return rows

    def after_train(self, runner) -> None:
        if is_main_process():
            rows = self.write_report(runner)
            print_log(
                '\n' + self.summary_table(rows) +
                f'\nReport: {osp.join(runner.work_dir, "report.md")}',
                logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['active_learning'] = self.state.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('active_learning')
        if saved is not None and saved['round'] > self.state.round:
            raise RuntimeError(
                f'the checkpoint was saved at round {saved["round"]} but '
                f'{self.store.root} ends at round {self.state.round}: round '
                f'folders were deleted. Restore them, or resume from an '
                f'earlier checkpoint with --resume PATH.')

    # ----------------------------------------------------------------- rounds
    def query(self, runner, round_idx: int) -> np.ndarray:
        """Score the pool, label a budget of items as ``round_idx``.

        Returns:
            np.ndarray: The pool positions labeled (for region and pixel
            queries: the images that got new pixels).
        """
        if self.pixel_query is not None:
            return self._query_pixels(runner, round_idx)
        if self.oracle == 'human':
            pending = self.store.load_query(round_idx)
            if pending is None:
                selected, scores, info = self._select(runner, round_idx)
                self._ask_for_labels(runner, round_idx, selected, scores,
                                     dict(info, oracle='human'))
            selected, scores, info = self._labels_arrived(
                runner, round_idx, pending)
        else:
            selected, scores, info = self._select(runner, round_idx)
        self.state.add_round(selected)
        if is_main_process():
            if self.train_pool is not None and len(self.train_pool) and (
                    'seg_map_path' in self.train_pool.get_data_info(0)):
                info = dict(
                    info,
                    queried_classes=pixel_class_histogram(
                        self.train_pool, [(int(i), None) for i in selected]))
            self.store.save_round(self.state, scores=scores, info=info)
            self.store.remove_query(round_idx)
            self.write_report(runner)
        barrier()
        self._update_train_set(runner)
        print_log(
            f'Active learning round {round_idx}: queried {len(selected)} of '
            f'{info["num_candidates"]} candidates in '
            f'{info["scoring_seconds"]:.1f}s; '
            f'{self.state.num_labeled}/{self.state.pool_size} labeled '
            f'({100 * self.state.num_labeled / self.state.pool_size:.1f}%).',
            logger='current')
        return selected

    def _select(self, runner, round_idx: int) -> tuple:
        """Score the candidates and pick the round's query.

        Returns:
            tuple: Pool positions picked, the score of every candidate
            scored (or None), and facts about the round.
        """
        unlabeled = self.state.unlabeled_indices()
        budget = min(_count(self.budget, self.state.pool_size),
                     len(unlabeled))
        rng = self.state.round_rng(round_idx)
        candidates = self._subset(unlabeled, rng, budget)
        start = time.perf_counter()
        scores = None
        if self.pool_sampler.needs_model:
            scores = self._score(runner, candidates)
        picked = [None]
        if is_main_process():
            picked[0] = np.asarray(
                self.pool_sampler.select(scores, len(candidates), budget,
                                         rng), dtype=np.int64)
        broadcast_object_list(picked)
        info = dict(
            strategy=repr(self.pool_sampler),
            epoch=runner.epoch,
            num_candidates=int(len(candidates)),
            scoring_seconds=round(time.perf_counter() - start, 3))
        return candidates[picked[0]], None if scores is None else dict(
            zip(candidates.tolist(), scores.tolist())), info

    def _subset(self, candidates: np.ndarray, rng: np.random.Generator,
                minimum: int = 0) -> np.ndarray:
        """``pool_subset`` of the candidates (at least ``minimum``), drawn
        with the round's generator, or all of them."""
        if self.pool_subset is None:
            return candidates
        size = max(_count(self.pool_subset, len(candidates)), minimum)
        if size >= len(candidates):
            return candidates
        return np.sort(rng.choice(candidates, size=size, replace=False))

    def _ask_for_labels(self,
                        runner,
                        round_idx: int,
                        selected: np.ndarray,
                        scores: Optional[Dict[int, float]],
                        info: dict,
                        extra: Optional[dict] = None,
                        writers: Optional[dict] = None) -> None:
        """Write the query for a person and stop the run.

        ``extra`` goes into ``selection.json`` (e.g. the regions queried) and
        ``writers`` add files (``regions.json``) to the query folder.
        """
        if is_main_process():
            files = query_files(
                round_idx, selected, scores or {},
                [self.train_pool.get_data_info(int(i)) for i in selected],
                self.train_pool.metainfo.get('classes', ()), info, extra)
            files.update(writers or {})
            self.store.save_query(round_idx, files)
        barrier()
        raise AwaitingLabels(
            waiting_message(round_idx, self.store.query_dir(round_idx), None,
                            len(selected), runner.work_dir,
                            runner.cfg.filename))

    def _labels_arrived(self,
                        runner,
                        round_idx: int,
                        pending: dict,
                        units: Optional[Dict[int, dict]] = None) -> tuple:
        """The saved query, once every queried item has its labels (for a
        region query: labels inside every queried region)."""
        selected = np.asarray(pending['indices'], dtype=np.int64)

        def arrived(index: int) -> bool:
            info = self.train_pool.get_data_info(index)
            if units is None:
                return labels_present(info)
            return self.pixel_query.units_labeled(info['seg_map_path'],
                                                  units[index])

        missing = [int(i) for i in selected if not arrived(int(i))]
        if missing:
            raise AwaitingLabels(
                waiting_message(round_idx, self.store.query_dir(round_idx),
                                missing, len(selected), runner.work_dir,
                                runner.cfg.filename))
        scores = {int(k): v for k, v in pending['scores'].items()}
        return selected, scores or None, pending['info']

    def _query_pixels(self, runner, round_idx: int) -> np.ndarray:
        """Score every pixel of the candidates, reveal the best units."""
        query, shapes = self.pixel_query, self._image_shapes()
        if self.oracle == 'human':
            pending = self.store.load_query(round_idx)
            if pending is None:
                units, info = self._select_pixels(runner, round_idx)
                self._ask_for_labels(
                    runner, round_idx, np.asarray(sorted(units)),
                    {i: u['scores'][0]
                     for i, u in units.items()}, dict(info, oracle='human'),
                    extra=dict(units=query.units_to_json(units)),
                    writers={
                        'regions.json':
                        query.regions_writer(round_idx, units,
                                             self.state.item_names)
                    })
            units = query.units_from_json(pending['units'])
            self._labels_arrived(runner, round_idx, pending, units)
            info = pending['info']
        else:
            units, info = self._select_pixels(runner, round_idx)
        revealed = query.reveal(units, shapes)
        touched = np.asarray(sorted(units), dtype=np.int64)
        self.state.add_round(
            touched[self.state.labeled_round[touched] == UNLABELED])
        info = dict(
            info,
            images_queried=len(units),
            pixels_revealed=revealed,
            **self._pixel_fraction())
        if is_main_process():
            info['queried_classes'] = pixel_class_histogram(
                self.train_pool, query.delta_masks(units, shapes))
            self.store.save_round(
                self.state,
                scores={i: u['scores'][0]
                        for i, u in units.items()},
                info=info,
                writers=query.writers(round_idx, units,
                                      self.state.item_names, shapes))
            self.store.remove_query(round_idx)
            query.export_masks(self._paths(), list(units))
            self.write_report(runner)
        barrier()
        self._update_train_set(runner)
        print_log(
            f'Active learning round {round_idx}: revealed {revealed} pixels '
            f'in {len(units)} of {info["num_candidates"]} candidate images '
            f'in {info["scoring_seconds"]:.1f}s; '
            f'{100 * query.labeled_fraction(shapes):.2f}% of the pool\'s '
            f'pixels labeled.',
            logger='current')
        return touched

    def _select_pixels(self, runner, round_idx: int) -> tuple:
        """Rank every candidate's units and pick the round's.

        Returns:
            tuple: ``{pool position: dict(corners, scores)}`` of the units
            picked, best first per image, and facts about the round.
        """
        query, shapes = self.pixel_query, self._image_shapes()
        candidates = np.asarray([
            i for i in range(self.state.pool_size)
            if query.has_hidden(i, shapes[i])
        ], dtype=np.int64)
        candidates = self._subset(candidates,
                                  self.state.round_rng(round_idx))
        total = query.total_units(shapes, self.budget)
        position = {p: i for i, p in enumerate(self._paths())}
        model = unwrap_model(runner.model)

        def rank_batch(batch):
            maps = self.pool_sampler.score_maps(model, batch)
            ranked = []
            for sample, score_map in zip(batch['data_samples'], maps):
                index = position[sample.img_path]
                if tuple(score_map.shape) != shapes[index]:
                    raise RuntimeError(
                        f'{type(self.pool_sampler).__name__} scored '
                        f'{sample.img_path} at {tuple(score_map.shape)}, not '
                        f'at its size {shapes[index]}')
                ranked.append(
                    query.rank(score_map, index,
                               query.max_units(shapes[index], self.budget,
                                               total)))
            return ranked

        start = time.perf_counter()
        ranked = self._score(runner, candidates, rank_batch, as_floats=False)
        ranked = dict(zip(candidates.tolist(), ranked))
        units = [None]
        if is_main_process():
            units[0] = query.select(ranked, total)
        broadcast_object_list(units)
        info = dict(
            strategy=repr(self.pool_sampler),
            epoch=runner.epoch,
            granularity=self.granularity,
            num_candidates=int(len(candidates)),
            scoring_seconds=round(time.perf_counter() - start, 3))
        return units[0], info

    def _score(self, runner, candidates: np.ndarray, score_batch=None,
               as_floats: bool = True):
        model = unwrap_model(runner.model)
        score_batch = score_batch or (
            lambda batch: self.pool_sampler.score_batch(model, batch))
        was_training = model.training
        model.eval()
        try:
            return score_candidates(
                score_batch, self.pool_dataset(runner), candidates,
                as_floats=as_floats, **self.pool_dataloader)
        finally:
            model.train(was_training)

    def _pool_is_empty(self) -> bool:
        if self.pixel_query is None:
            return len(self.state.unlabeled_indices()) == 0
        shapes = self._image_shapes()
        return not any(
            self.pixel_query.has_hidden(i, shape)
            for i, shape in enumerate(shapes))

    def _paths(self) -> List[str]:
        return [
            self.train_pool.get_data_info(i)['img_path']
            for i in range(len(self.train_pool))
        ]

    def _image_shapes(self) -> List:
        if self._shapes is None:
            self._shapes = image_shapes(self._paths())
        return self._shapes

    def _pixel_fraction(self) -> Dict[str, float]:
        if self.pixel_query is None:
            return {}
        return dict(
            labeled_pixel_fraction=round(
                self.pixel_query.labeled_fraction(self._image_shapes()), 6))

    def pool_dataset(self, runner):
        """The pool items under the scoring pipeline, same order as training.
        """
        if self._pool_dataset is None:
            dataset = build_pool_dataset(runner.cfg, self.pool_pipeline,
                                         self.sampler.pool_index)
            if item_names(dataset) != self.state.item_names:
                raise RuntimeError(
                    'the pool dataset built for scoring does not list the '
                    'same items as the train dataset; check that '
                    'train_dataloader.dataset builds the same way with the '
                    'test pipeline')
            self._pool_dataset = dataset
        return self._pool_dataset

    @staticmethod
    def summary_table(rows: List[Dict]) -> str:
        """A text table of report rows: labeled count and metrics (and the
        fraction of pixels labeled, for region/pixel queries)."""
        pixels = any('pixel_fraction' in row for row in rows)
        header = ['round', 'labeled', 'fraction'] + (
            ['pixel fraction'] if pixels else []) + ['metrics']
        cells = [[str(row['round']),
                  str(row['labeled']), f'{row["fraction"]:.3f}'] +
                 ([f'{row.get("pixel_fraction", 0.0):.4f}'] if pixels else
                  []) + [
                      ', '.join(f'{k}: {v:.4f}'
                                for k, v in row['metrics'].items()
                                if isinstance(v, float))
                  ] for row in rows]
        widths = [
            max(len(r[i]) for r in cells + [header])
            for i in range(len(header))
        ]
        lines = [' | '.join(h.ljust(w) for h, w in zip(header, widths))]
        lines.append('-+-'.join('-' * w for w in widths))
        lines += [
            ' | '.join(c.ljust(w) for c, w in zip(r, widths)) for r in cells
        ]
        return 'Active learning summary\n' + '\n'.join(lines)

    # --------------------------------------------------------------- helpers
    def _check_amounts(self) -> None:
        pool_size = self.state.pool_size
        for field, amount in (('initial_labeled', self.initial_labeled),
                              ('budget', self.budget)):
            if isinstance(amount, int) and amount > pool_size:
                raise ValueError(
                    f'ActiveLearningHook.{field}={amount} is larger than '
                    f'the pool ({pool_size} items): lower it, or give a '
                    f'fraction such as {field}=0.05.')
        if (self.initial_labeled_file is None
                and _count(self.initial_labeled, pool_size) == 0
                and self.sampler.pool_index is None):
            raise ValueError(
                f'ActiveLearningHook.initial_labeled={self.initial_labeled} '
                f'labels no item of a pool of {pool_size}: raise it (only '
                f'a pool beside labeled data, LabeledSetSampler.pool_index, '
                f'may start empty).')
        if (self.granularity == 'image' and self.num_rounds
                and _count(self.budget, pool_size) == 0):
            raise ValueError(
                f'ActiveLearningHook.budget={self.budget} labels no item '
                f'per round of a pool of {pool_size}: raise it.')

    def _check_ground_truth(self) -> None:
        """A simulated oracle reveals ground truth: every item needs it."""
        if self.oracle != 'simulated':
            return
        missing = [
            i for i in range(self.state.pool_size)
            if not labels_present(self.train_pool.get_data_info(i))
        ]
        if missing:
            raise ValueError(
                f'{len(missing)} pool items have no labels (e.g. '
                f'{self.state.item_names[missing[0]]}): the simulated oracle '
                f"reveals ground truth. Use active_learning.oracle='human' "
                f'to label the queries yourself.')

    def _label_initial_set(self, runner) -> None:
        pool_size = self.state.pool_size
        if self.initial_labeled_file is not None:
            initial = read_initial_file(self.initial_labeled_file,
                                        self.state.item_names)
        elif self.oracle == 'human':
            initial = self._initial_human_labels(runner)
        else:
            initial = draw_initial_set(
                pool_size, _count(self.initial_labeled, pool_size),
                self.state.round_rng(0))
        self.state.add_round(initial)
        writers = None
        if self.pixel_query is not None:
            shapes = self._image_shapes()
            self.pixel_query.reveal({}, shapes, whole=initial)
            writers = self.pixel_query.writers(
                0, {}, self.state.item_names, shapes, whole=initial)
        if is_main_process():
            self.store.save_round(
                self.state,
                info=dict(strategy='initial', **self._pixel_fraction()),
                writers=writers)
            if self.pixel_query is not None:
                self.pixel_query.export_masks(self._paths())
            self.store.remove_query(0)
        barrier()
        print_log(
            f'Active learning starts with {self.state.num_labeled} of '
            f'{pool_size} items labeled.', logger='current')

    def _initial_human_labels(self, runner) -> np.ndarray:
        """The items labeled at the start; when there are none (and no
        labeled data beside the pool), a random draw to label first."""
        labeled = np.asarray([
            i for i in range(self.state.pool_size)
            if labels_present(self.train_pool.get_data_info(i))
        ], dtype=np.int64)
        if len(labeled) or self.sampler.pool_index is not None:
            return labeled
        pending = self.store.load_query(0)
        if pending is None:
            drawn = draw_initial_set(
                self.state.pool_size,
                _count(self.initial_labeled, self.state.pool_size),
                self.state.round_rng(0))
            self._ask_for_labels(
                runner, 0, drawn, None,
                dict(strategy='initial', oracle='human', num_candidates=0,
                     scoring_seconds=0.0))
        return self._labels_arrived(runner, 0, pending)[0]

    def _update_train_set(self, runner) -> None:
        self.sampler.set_labeled(self.state.labeled_indices())
        loop = runner.train_loop
        # Keeps the ETA and iteration-based schedules honest as the set grows.
        loop._max_iters = loop.max_epochs * len(loop.dataloader)

    def _load_or_save_initial_state(self, runner) -> dict:
        path = osp.join(self.store.root, 'initial_state.pth')
        if runner.epoch == 0 and not osp.exists(path):
            state = dict(
                model=unwrap_model(runner.model).state_dict(),
                optimizer=runner.optim_wrapper.state_dict(),
                param_schedulers=[
                    s.state_dict() for s in _schedulers(runner)
                ])
            if is_main_process():
                os.makedirs(self.store.root, exist_ok=True)
                tmp = path + '.tmp'
                torch.save(state, tmp)
                os.replace(tmp, path)
            barrier()
            return copy.deepcopy(state)
        if not osp.exists(path):
            raise RuntimeError(
                f'reset_each_round needs {path}, saved when the run started; '
                f'it is missing. Resume without reset_each_round or restart.')
        return torch.load(path, map_location='cpu', weights_only=True)

    def _reset_training(self, runner) -> None:
        unwrap_model(runner.model).load_state_dict(
            self._initial_state['model'])
        runner.optim_wrapper.load_state_dict(
            copy.deepcopy(self._initial_state['optimizer']))
        for scheduler, state in zip(
                _schedulers(runner), self._initial_state['param_schedulers']):
            scheduler.load_state_dict(copy.deepcopy(state))
        print_log('Weights, optimizer and LR schedule reset for the new round.',
                  logger='current')


def build_pool_sampler(cfg: Union[dict, str]):
    """Build a pool sampler, naming the registered ones when it is unknown.

    A bare name stands for its defaults, so one command-line option swaps
    strategies whatever fields the config's sampler had:
    ``--cfg-options active_learning.pool_sampler=RandomSampler``.
    """
    cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
    name = cfg.get('type')
    if isinstance(name, str) and name.startswith('mmsaal.'):
        cfg['type'] = name = name[len('mmsaal.'):]
    if isinstance(name, str) and POOL_SAMPLERS.get(name) is None:
        known = ', '.join(sorted(POOL_SAMPLERS.module_dict))
        raise KeyError(
            f'ActiveLearningHook.pool_sampler: unknown type {name!r}. '
            f'Registered pool samplers: {known}.')
    return POOL_SAMPLERS.build(cfg)


def find_labeled_set_sampler(dataloader) -> LabeledSetSampler:
    """The ``LabeledSetSampler`` of the train dataloader, or a clear error."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    for sampler in (getattr(batch_sampler, 'sampler', None),
                    getattr(dataloader, 'sampler', None)):
        if isinstance(sampler, LabeledSetSampler):
            return sampler
    raise TypeError(
        'ActiveLearningHook needs train_dataloader.sampler='
        "dict(type='mmsaal.LabeledSetSampler', shuffle=True) so that "
        'training iterates the labeled items only; got '
        f'{type(getattr(batch_sampler, "sampler", dataloader.sampler)).__name__}.')


def _count(amount: Union[int, float], total: int) -> int:
    return amount if isinstance(amount, int) else int(round(amount * total))


def _check_amount(field: str, amount) -> None:
    ok = (isinstance(amount, int) and not isinstance(amount, bool)
          and amount > 0) or (isinstance(amount, float) and 0 < amount <= 1)
    if not ok:
        raise ValueError(
            f'ActiveLearningHook.{field} must be a count > 0 (int) or a '
            f'fraction in (0, 1] (float), got {amount!r}.')


def _schedulers(runner) -> Sequence:
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        return [s for group in schedulers.values() for s in group]
    return schedulers


def _to_builtin(value):
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    return value
