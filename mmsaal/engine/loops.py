# Copyright (c) mmsaal contributors. All rights reserved.
"""An epoch-based train loop whose resumed run is the uninterrupted run."""
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmsaal.registry import FUNCTIONS, LOOPS
from mmsaal.utils import random_states


@LOOPS.register_module()
class ReproducibleEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, resumable without changing the
    run.

    What mmengine's loop leaves out on ``--resume``, this one replays:

    - **The global generators.** ``ReproducibleResumeHook`` saves them in
      every checkpoint; they are restored where the checkpoint was taken.
    - **The validation after an epoch-end checkpoint.** mmengine saves at
      the end of an epoch, then validates; its resume starts the next epoch
      and skips that validation. This loop runs it (the metrics of a round
      are written then) before going on.
    - **The position in the epoch.** A checkpoint saved by iteration
      resumes at the next batch: the batches before it are loaded again
      (so data-loading workers draw what they drew) but not trained on.
    - **The workers' generators.** With ``num_workers > 0`` the workers of
      epoch ``e`` are seeded from ``(randomness.seed, e, rank)`` and their
      worker id (:func:`seed_worker`), not from how many epochs this
      process has run. Workers that persist across epochs keep their
      generators, so ``persistent_workers=True`` is refused here in
      favour of a clear message: ``setup_active_learning`` turns it off.

    Args are those of ``EpochBasedTrainLoop``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.dataloader, 'persistent_workers', False):
            raise ValueError(
                'train_dataloader.persistent_workers=True: persistent '
                'workers carry their random generators from epoch to epoch, '
                'so a resumed run would not repeat the uninterrupted one. '
                'Set train_dataloader.persistent_workers=False (each epoch '
                'then starts its workers, seeded by seed, epoch and rank).')
        self._batch_idx = -1
        self._epoch_finished = False
        self._resume_point: Optional[Dict] = None
        self.started = False  # before_train has run: this start was taken

    # ------------------------------------------------------------ checkpoint
    def position(self) -> int:
        """Batches of the current epoch already trained on, as a checkpoint
        taken now sees it (0 once the epoch has ended: the checkpoint's
        epoch is then the next one)."""
        return 0 if self._epoch_finished else self._batch_idx + 1

    def resume_from(self, batches_done: int,
                    states: Optional[Dict]) -> None:
        """Continue at ``batches_done`` of the resumed epoch with the global
        generators in ``states`` (None: leave them as they are)."""
        self._resume_point = dict(batches_done=batches_done, states=states)

    # ------------------------------------------------------------------ run
    def run(self) -> torch.nn.Module:
        self.runner.call_hook('before_train')
        self.started = True
        point = self._resume_point
        if point is not None and point['batches_done'] == 0:
            self._resume_point = None
            self._restore(point['states'])
            self._decide_current_val_interval()
            if self._epoch > 0 and self._validates():
                # The killed run validated right after this checkpoint.
                self.runner.val_loop.run()

        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._decide_current_val_interval()
            if self._validates():
                self.runner.val_loop.run()

        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self._epoch_finished = False
        self._seed_workers()
        batches = iter(self.dataloader)
        start = 0
        point, self._resume_point = self._resume_point, None
        if point is not None:
            start = point['batches_done']
            for _ in range(start):
                next(batches)
            self._restore(point['states'])
        for idx, data_batch in enumerate(batches, start):
            self._batch_idx = idx
            self.run_iter(idx, data_batch)
        self._epoch_finished = True
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def _validates(self) -> bool:
        """Whether the epoch that just ended is validated (mmengine's
        rule)."""
        return (self.runner.val_loop is not None
                and self._epoch >= self.val_begin
                and (self._epoch % self.val_interval == 0
                     or self._epoch == self._max_epochs))

    def _seed_workers(self) -> None:
        """Draw this epoch's worker seeds from ``(seed, epoch, rank)``."""
        if self.dataloader.num_workers > 0:
            seed = random_states.epoch_seed(self.runner.seed, self._epoch,
                                            get_rank())
            self.dataloader.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def _restore(states: Optional[Dict]) -> None:
        if states is not None:
            random_states.restore(states)
            print_log('Random generators restored from the checkpoint.',
                      logger='current')


@FUNCTIONS.register_module()
def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` that seeds python, numpy and torch in a worker from
    the seed torch gives it (the loader's base seed + ``worker_id``).

    mmengine's default ``worker_init_fn`` gives every epoch the same worker
    seeds; with the base seed drawn per epoch by
    :class:`ReproducibleEpochBasedTrainLoop`, each epoch's augmentations
    differ and depend on ``(seed, epoch, rank, worker_id)`` alone.
    """
    seed = torch.utils.data.get_worker_info().seed
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
