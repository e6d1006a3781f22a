# Copyright (c) mmsaal contributors. All rights reserved.
from typing import Dict, List, Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmsaal.engine.loops import ReproducibleEpochBasedTrainLoop
from mmsaal.registry import HOOKS
from mmsaal.utils import random_states


@HOOKS.register_module()
class ReproducibleResumeHook(Hook):
    """Save what a resumed run needs to repeat the uninterrupted one: the
    global random generators of every rank and the position in the epoch.

    ``checkpoint['resume']`` holds ``random_states`` (one
    :func:`~mmsaal.utils.random_states.capture` per rank) and
    ``batches_done`` (of the epoch the checkpoint resumes in). On
    ``--resume`` they go to :class:`ReproducibleEpochBasedTrainLoop`, which
    restores them where the checkpoint was taken. ``setup_active_learning``
    adds this hook and that loop.

    Checkpoints are written by rank 0 only, so the ranks' states are
    gathered at every epoch's end (before ``CheckpointHook``, whose
    priority is ``VERY_LOW``); a checkpoint saved by iteration holds rank
    0's state alone, which restores a single-process run exactly.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._epoch_end_states: Optional[List[Dict]] = None

    def after_train_epoch(self, runner) -> None:
        self._epoch_end_states = random_states.capture_every_rank()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = runner.train_loop
        if not isinstance(loop, ReproducibleEpochBasedTrainLoop):
            return
        batches_done = loop.position()
        states = self._epoch_end_states if batches_done == 0 else [
            random_states.capture()
        ]
        checkpoint['resume'] = dict(
            random_states=states, batches_done=batches_done)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = runner.train_loop
        if not runner.cfg.get('resume', False) or not isinstance(
                loop, ReproducibleEpochBasedTrainLoop):
            return  # load_from (weights only), or another loop
        saved = checkpoint.get('resume')
        if saved is None:
            print_log(
                'The checkpoint holds no random states (written without '
                'ReproducibleResumeHook): training resumes at the start of '
                'its epoch with fresh generators, so it will not repeat the '
                'uninterrupted run exactly.',
                logger='current')
            return
        mine = random_states.this_rank(saved['random_states'])
        if mine is None:
            print_log(
                f'The checkpoint holds the random states of '
                f'{len(saved["random_states"] or [])} rank(s) and this run '
                f'has {get_world_size()}: generators are not restored.',
                logger='current')
        loop.resume_from(saved['batches_done'], mine)
