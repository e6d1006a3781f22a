# Copyright (c) mmsaal contributors. All rights reserved.
"""One active-learning round as four steps: score -> select -> label ->
record. Plain objects, no Runner: the hook says when, this says what."""
import logging
import time
from typing import Callable, Optional, Union

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.logging import print_log

from mmsaal.pool import PoolState, RoundStore, read_initial_file
from mmsaal.pool_samplers import RandomSampler
from mmsaal.utils import random_states
from .record import RoundRecorder
from .score import score_in_eval_mode
from .units import ImageUnits, Query, count, pick_units


class RoundPipeline:
    """Runs the rounds of an active-learning experiment over a pool.

    Args:
        sampler: The pool sampler (strategy): it scores, then selects.
        units (ImageUnits): What a query labels (images, regions, pixels).
        oracle (BaseOracle): Who labels (``mmsaal.oracles``).
        state (PoolState): The labeled state.
        store (RoundStore): The round folders.
        recorder (RoundRecorder): Writes what a round leaves on disk.
        pool_dataset (Callable[[], Dataset]): Builds the pool under the
            scoring pipeline (called once, when first needed).
        pool_subset (int | float, optional): Score only this many (or this
            fraction) of the candidates each round. Defaults to None.
        pool_dataloader (dict, optional): ``batch_size`` and
            ``num_workers`` of the scoring passes.
        cold_start_rounds (int): The first this many query rounds draw
            uniformly at random (``RandomSampler``, as the random baseline
            draws) instead of with ``sampler``. Defaults to 0.
    """

    def __init__(self,
                 sampler,
                 units: ImageUnits,
                 oracle,
                 state: PoolState,
                 store: RoundStore,
                 recorder: RoundRecorder,
                 pool_dataset: Callable,
                 pool_subset: Optional[Union[int, float]] = None,
                 pool_dataloader: Optional[dict] = None,
                 cold_start_rounds: int = 0) -> None:
        self.sampler = sampler
        self.cold_start_rounds = cold_start_rounds
        self.cold_start_sampler = RandomSampler()
        self.units = units
        self.oracle = oracle
        self.state = state
        self.store = store
        self.recorder = recorder
        self._build_pool_dataset = pool_dataset
        self._pool_dataset = None
        self.pool_subset = pool_subset
        self.pool_dataloader = pool_dataloader or {}

    @property
    def pool_dataset(self):
        if self._pool_dataset is None:
            self._pool_dataset = self._build_pool_dataset()
        return self._pool_dataset

    # ------------------------------------------------------------ start
    def resume(self) -> int:
        """Load the latest round from disk; returns it."""
        latest = self.store.load_latest(self.state)
        if is_main_process():
            self.units.export_missing(self.state)
            self.recorder.count_missing_classes()
        barrier()
        print_log(
            f'Active learning resumed at round {latest}: '
            f'{self.state.num_labeled} of {self.state.pool_size} items '
            f'labeled.',
            logger='current')
        return latest

    def label_initial_set(self,
                          size: int,
                          initial_file: Optional[str] = None,
                          may_start_empty: bool = False) -> None:
        """Round 0: the items of ``initial_file``, or what the oracle
        gives (a random draw of ``size``, or a person's labels)."""
        self.oracle.check_pool(self.state)
        if initial_file is not None:
            initial = read_initial_file(initial_file, self.state.item_names)
        else:
            initial = self.oracle.initial_set(self.state, size,
                                              may_start_empty)
        query = Query(np.asarray(initial, dtype=np.int64))
        self.units.reveal(self.state, query)
        if is_main_process():
            self.recorder.save_round(
                query,
                dict(strategy='initial', **self.units.progress(self.state)),
                initial=True)
        barrier()
        print_log(
            f'Active learning starts with {self.state.num_labeled} of '
            f'{self.state.pool_size} items labeled.',
            logger='current')

    # ----------------------------------------------------------- rounds
    def run(self, round_idx: int, model: torch.nn.Module,
            epoch: int) -> Query:
        """Query, label and record round ``round_idx``.

        Returns:
            Query: What the round labeled.
        """
        query = self.oracle.pending(round_idx)
        if query is None:
            query = self.select(round_idx, model, epoch)
            self.oracle.request(round_idx, query, model)
        # The run may stop here for a person's labels: the last round's
        # classes are counted before it does (long done, after training).
        self.recorder.wait()
        self.oracle.wait_for_labels(round_idx, query)
        query.info = dict(query.info,
                          **self.units.reveal(self.state, query))
        # Where every rank's generators are once the round is chosen: a run
        # that resumes from a checkpoint taken before this round goes on
        # from here instead of querying again.
        generators = random_states.capture_every_rank()
        if is_main_process():
            self.recorder.save_round(query, query.info, generators)
        barrier()
        print_log(
            f'Active learning round {round_idx}: '
            f'{self.units.describe(query, self.state)}',
            logger='current')
        return query

    def select(self, round_idx: int, model: torch.nn.Module,
               epoch: int) -> Query:
        """Steps 1 and 2: score the candidates, let the round's sampler
        pick."""
        sampler = self.sampler_for(round_idx)
        rng = self.state.round_rng(round_idx)
        ties = self.state.tie_seed(round_idx)
        candidates = self.units.candidates(self.state)
        budget = self.units.round_budget(self.state, candidates)
        candidates = self.subset(candidates, rng, budget.min_candidates)
        self.units.prepare(sampler, self.state, budget, ties)
        start = time.perf_counter()
        scored = self.score(sampler, model, candidates) \
            if self.units.needs_scoring(sampler) else None
        table = self.units.table(candidates, scored)
        picked = [None]
        if is_main_process():
            picked[0] = pick_units(sampler, table, budget, rng, ties)
        broadcast_object_list(picked)
        info = dict(
            strategy=repr(sampler),
            epoch=epoch,
            **self.units.round_info(),
            num_candidates=int(len(candidates)),
            scoring_seconds=round(time.perf_counter() - start, 3))
        query = self.units.query(table, picked[0], info)
        note = tie_note(query)
        if note:
            query.info['ties'] = note
            print_log(f'Active learning round {round_idx}: {note}',
                      logger='current', level=logging.WARNING)
        return query

    def sampler_for(self, round_idx: int):
        """The sampler that picks round ``round_idx``: the cold start's in
        the first ``cold_start_rounds``, then ``sampler``."""
        if round_idx <= self.cold_start_rounds:
            return self.cold_start_sampler
        return self.sampler

    def score(self, sampler, model: torch.nn.Module,
              candidates: np.ndarray) -> list:
        """Step 1: one result per candidate (a float, or ranked units)."""
        with sampler.scoring(model):
            return score_in_eval_mode(
                lambda batch: self.units.start_batch(sampler, model, batch),
                model,
                self.pool_dataset, candidates, trim=self.units.trim,
                finish=self.units.finish_batch, **self.pool_dataloader)

    def subset(self, candidates: np.ndarray, rng: np.random.Generator,
               minimum: int = 0) -> np.ndarray:
        """``pool_subset`` of the candidates (at least ``minimum``), drawn
        with the round's generator, or all of them."""
        if self.pool_subset is None:
            return candidates
        size = max(count(self.pool_subset, len(candidates)), minimum)
        if size >= len(candidates):
            return candidates
        return np.sort(rng.choice(candidates, size=size, replace=False))

    def is_exhausted(self) -> bool:
        """Whether nothing is left to label."""
        return len(self.units.candidates(self.state)) == 0


def tie_note(query) -> Optional[str]:
    """What to say when a round's scores give no order: more than half of
    the scored items share the top score, or every queried region or pixel
    has the same score (a model that predicts one class everywhere gives
    SAAL x impurity maps of 0). Ties go in a seeded random order, so such
    a query is as good as a random one; None when the scores order the
    query."""
    if query.units:
        picked = np.concatenate([np.asarray(u['scores'], np.float64)
                                 for u in query.units.values()])
        if len(picked) > 1 and np.all(picked == picked[0]):
            return (f'all {len(picked)} queried units score exactly '
                    f'{picked[0]:g}: the scores give them no order, so '
                    f'they were drawn at random among the ties (a model '
                    f'that predicts one class everywhere scores every '
                    f'SAAL x impurity unit 0)')
        return None
    scores = np.asarray(list((query.scores or {}).values()), np.float64)
    if len(scores) > 1:
        tied = int((scores == scores.max()).sum())
        if tied > len(scores) / 2:
            return (f'{tied} of the {len(scores)} scored items share the top '
                    f'score {scores.max():g}: the scores give them no order, '
                    f'so they were drawn at random among the ties')
    return None

