# Copyright (c) mmsaal contributors. All rights reserved.
import os.path as osp
import time
from typing import Dict, Optional, Sequence, Union

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsaal.apis.experiment import record_experiment, start_refusal
from mmsaal.datasets.samplers import LabeledSetSampler
from mmsaal.engine.training_reset import InitialTrainingState
from mmsaal.pool import PoolState
from mmsaal.registry import HOOKS, POOL_SAMPLERS
from mmsaal.rounds import (ActiveLearningSettings, RoundPipeline,
                           build_round_pipeline, count, summary_table,
                           unwrap_model)
from mmsaal.utils import WorkDirError, random_states


@HOOKS.register_module()
class ActiveLearningHook(Hook):
    """Run pool-based active learning inside an epoch-based training.

    Training goes in rounds of ``epochs_per_round`` epochs. Round 0 trains on
    the initial labeled set; at the start of every later round the hook
    runs a round of :class:`~mmsaal.rounds.RoundPipeline` (score the pool
    with ``pool_sampler``, select ``budget`` units, have the oracle label
    them, record the round) and training goes on with the larger set. The
    hook itself only says when: the rounds are plain objects of
    ``mmsaal.rounds``. The state of the pool is written after every round to
    ``{work_dir}/{state_dir}/round_XX/`` (atomically); ``--resume`` restarts
    from the latest round and checkpoint without losing or duplicating a
    label.

    The train dataloader must use ``sampler=dict(type='mmsaal.LabeledSetSampler')``
    and ``train_cfg.max_epochs`` must be ``(num_rounds + 1) *
    epochs_per_round``.

    Args:
        **fields: The ``active_learning`` fields: see
            :class:`~mmsaal.rounds.ActiveLearningSettings`, which documents
            and checks each.

    With a ``ConcatDataset`` of labeled parts and a pool
    (``LabeledSetSampler.pool_index``, domain adaptation), the pool is that
    part, and ``initial_labeled=0`` starts from the labeled parts alone.
    """

    priority = 'NORMAL'

    def __init__(self, **fields) -> None:
        self.pool_sampler = build_pool_sampler(
            fields.get('pool_sampler') or dict(type='RandomSampler'))
        #: The active_learning fields, checked.
        self.settings = settings = ActiveLearningSettings(**fields)
        if hasattr(self.pool_sampler, 'check_granularity'):
            self.pool_sampler.check_granularity(settings.granularity)
        self.rounds: Optional[RoundPipeline] = None
        self.initial_training: Optional[InitialTrainingState] = None
        self._train_started: Optional[float] = None
        self._train_seconds = 0.0

    @property
    def state(self) -> Optional[PoolState]:
        return None if self.rounds is None else self.rounds.state

    # ----------------------------------------------------------------- hooks
    def before_run(self, runner) -> None:
        """Find the pool, build the round pipeline, load or start its
        state."""
        self.sampler = find_labeled_set_sampler(runner.train_dataloader)
        self.rounds = build_round_pipeline(
            runner.cfg, self.sampler, runner.work_dir,
            runner.experiment_name, self.pool_sampler, self.settings)
        store = self.rounds.store
        # tools/train_al.py asked before the Runner was built; a Runner
        # built by hand is refused here.
        refusal = start_refusal(runner.cfg, store.root)
        if refusal:
            raise WorkDirError(refusal)
        if store.rounds():
            self.rounds.resume()
            # Read once here, before training starts, so that a damaged
            # file is refused while the start can still leave nothing.
            store.load_random_states(self.state.round)
        else:
            if is_main_process():
                store.start_run(getattr(runner.cfg, 'filename', None))
            barrier()
            self.rounds.label_initial_set(
                count(self.settings.initial_labeled, self.state.pool_size),
                self.settings.initial_labeled_file,
                may_start_empty=self.sampler.pool_index is not None)
            if is_main_process():
                record_experiment(runner.cfg, store.root)
        self._update_train_set(runner)

    def before_train(self, runner) -> None:
        expected = (self.settings.num_rounds + 1) * self.settings.epochs_per_round
        if runner.max_epochs != expected:
            raise ValueError(
                f'train_cfg.max_epochs is {runner.max_epochs} but '
                f'ActiveLearningHook runs (num_rounds + 1) * epochs_per_round '
                f'= ({self.settings.num_rounds} + 1) * {self.settings.epochs_per_round} = '
                f'{expected} epochs: set train_cfg.max_epochs={expected}.')
        if self.settings.reset_each_round:
            self.initial_training = InitialTrainingState(
                osp.join(self.rounds.store.root, 'initial_state.pth'))
            self.initial_training.save_or_load(
                unwrap_model(runner.model), runner.optim_wrapper,
                _schedulers(runner), runner.epoch == 0, is_main_process())
            barrier()

    def before_train_epoch(self, runner) -> None:
        """Query at the start of each round after the first."""
        epoch = runner.epoch
        self._train_started = time.perf_counter()
        if epoch == 0 or epoch % self.settings.epochs_per_round:
            return
        round_idx = epoch // self.settings.epochs_per_round
        if round_idx == self.state.round:
            # Written after the checkpoint this run resumed from: go on
            # with the generators the killed run had after querying it.
            self._restore_random_states(round_idx)
        if round_idx > self.settings.num_rounds or round_idx <= self.state.round:
            return  # done already (resumed after it was written)
        self.rounds.run(round_idx, unwrap_model(runner.model), epoch)
        self._update_train_set(runner)
        if self.settings.reset_each_round:
            self.initial_training.restore(
                unwrap_model(runner.model), runner.optim_wrapper,
                _schedulers(runner))
            print_log(
                'Weights, optimizer and LR schedule reset for the new '
                'round.',
                logger='current')
        self._train_seconds = 0.0
        self._train_started = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        if self._train_started is not None:
            self._train_seconds += time.perf_counter() - self._train_started
        ends_round = (runner.epoch + 1) % self.settings.epochs_per_round == 0
        if (ends_round and runner.epoch + 1 < runner.max_epochs
                and self.rounds.is_exhausted()):
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
        scalars = self.rounds.recorder.save_metrics(runner.epoch, metrics,
                                                    self._train_seconds)
        runner.visualizer.add_scalars(scalars, step=self.state.round)

    def after_train(self, runner) -> None:
        if is_main_process():
            # The last round's classes may still be being counted.
            self.rounds.recorder.wait()
            rows = self.rounds.recorder.report()
            print_log(
                '\n' + summary_table(rows) +
                f'\nReport: {osp.join(runner.work_dir, "report.md")}',
                logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """The pool state, the run's id and what it revealed go into every
        checkpoint: a resume takes only a checkpoint of this run."""
        saved = self.state.state_dict()
        saved['run'] = self.rounds.store.run_id()
        if self.state.revealed is not None:
            saved['revealed'] = self.state.revealed.digest()
        checkpoint['active_learning'] = saved

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On ``--resume``, refuse a checkpoint whose pool state is not the
        round folders' at its round (another run's, another dataset's, or
        one saved after rounds that were deleted). ``load_from`` takes
        weights only, from any run."""
        meta = checkpoint.get('meta')
        if isinstance(meta, dict) and 'config' in meta:
            # mmengine writes its config as meta['cfg'] and executes
            # meta['config'] as Python on resume: code a checkpoint carries
            # never runs here.
            meta.pop('config')
            print_log('The checkpoint carries a config to execute '
                      "(meta['config'], which mmengine does not write): "
                      'dropped unread.', logger='current')
        if not runner.cfg.get('resume', False):
            return
        path = runner.cfg.get('load_from') or 'the checkpoint'
        saved = checkpoint.get('active_learning')
        root = self.rounds.store.root
        if saved is None:
            raise WorkDirError(
                f'--resume refused: {path} holds no active-learning state, '
                f'so it is not a checkpoint of the run in {root}. Resume '
                f'from one of its own checkpoints, or start from these '
                f'weights in a new work dir with load_from={path}.')
        run = self.rounds.store.run_id()
        differences = self.state.differences(saved)
        if run is not None and saved.get('run') not in (None, run):
            differences.insert(0, 'it was written by another run (its run '
                               'id is not the one of the round folders)')
        if differences:
            raise WorkDirError(
                f'--resume refused: {path} is not a checkpoint of the run in '
                f'{root}: ' + '; '.join(differences) + '. Resume from one of '
                f'its own checkpoints (epoch_N.pth in its work dir, with '
                f'--resume PATH), restore the round folders it was saved '
                f'with, or start a new run in another --work-dir.')

    def _restore_random_states(self, round_idx: int) -> None:
        mine = random_states.this_rank(
            self.rounds.store.load_random_states(round_idx))
        if mine is not None:
            random_states.restore(mine)

    def _update_train_set(self, runner) -> None:
        self.sampler.set_labeled(self.state.labeled_indices())
        loop = runner.train_loop
        # mmengine's EpochBasedTrainLoop fixes max_iters at its start; the
        # labeled set grows, and the ETA and iteration-based schedules
        # read it.
        loop._max_iters = loop.max_epochs * len(loop.dataloader)


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
    # Built in mmsaal's scope: the run's default scope (mmdet, mmseg,
    # mmpretrain) has no child of this root registry to search.
    cfg.setdefault('_scope_', 'mmsaal')
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


def _schedulers(runner) -> Sequence:
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        return [s for group in schedulers.values() for s in group]
    return schedulers


