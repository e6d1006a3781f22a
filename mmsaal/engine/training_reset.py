# Copyright (c) mmsaal contributors. All rights reserved.
"""``reset_each_round``: every round trains again from the weights,
optimizer state and LR schedule the run started with."""
import copy
import os.path as osp
from typing import Sequence

import torch

from mmsaal.utils.checkpoint import load_checkpoint_file
from mmsaal.utils.errors import WorkDirError
from mmsaal.utils.files import atomic_write


class InitialTrainingState:
    """A snapshot of the model, optimizer and LR schedulers at the start,
    kept on disk so that a resumed run resets to the same state.

    Args:
        path (str): The snapshot file (``{rounds}/initial_state.pth``).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.state = None

    def save_or_load(self, model: torch.nn.Module, optim_wrapper,
                     schedulers: Sequence, starting: bool,
                     main_process: bool = True) -> None:
        """Take the snapshot when the run is ``starting`` (and none was
        saved), else read it back."""
        if starting and not osp.exists(self.path):
            state = dict(
                model=model.state_dict(),
                optimizer=optim_wrapper.state_dict(),
                param_schedulers=[s.state_dict() for s in schedulers])
            if main_process:
                # A fresh mkstemp name: a link planted at a fixed
                # temporary name is never followed.
                with atomic_write(self.path) as f:
                    torch.save(state, f)
            self.state = copy.deepcopy(state)
            return
        if not osp.exists(self.path):
            raise WorkDirError(
                f'reset_each_round needs {self.path}, saved when the run '
                f'started; it is missing. Resume without reset_each_round '
                f'or restart.')
        self.state = load_checkpoint_file(self.path, 'the initial state')

    def restore(self, model: torch.nn.Module, optim_wrapper,
                schedulers: Sequence) -> None:
        """Put the snapshot back into the live objects."""
        model.load_state_dict(self.state['model'])
        optim_wrapper.load_state_dict(copy.deepcopy(self.state['optimizer']))
        for scheduler, state in zip(schedulers,
                                    self.state['param_schedulers']):
            scheduler.load_state_dict(copy.deepcopy(state))
