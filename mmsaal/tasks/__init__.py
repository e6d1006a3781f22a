# Copyright (c) mmsaal contributors. All rights reserved.
"""Tasks: what differs between detection, segmentation and classification
pool items for the rounds (how an item's labels are found, counted and
handed to a person, and which prediction fields the uncertainty baselines
read), one registered class a task, one file each
(``mmsaal.registry.TASKS``). SAAL's own per-task code is the task adapter
(``mmsaal.adapters``). A new task is a :class:`Task` registered with a
``priority`` above the built-in ones where its items would also match one
of them.
"""
from functools import lru_cache
from typing import Tuple

from mmsaal.registry import TASKS
from .base import Task, class_name
from .classification import ClassificationTask
from .detection import DetectionTask
from .segmentation import SegmentationTask

for _task in (DetectionTask, SegmentationTask, ClassificationTask):
    TASKS.register_module(module=_task)


def task_of(info: dict) -> type:
    """The task of a pool item's data info: the first registered task, by
    ``priority``, that claims it; :class:`Task` when none does."""
    for task in registered_tasks(len(TASKS.module_dict)):
        if task.matches(info):
            return task
    return Task


def task_of_prediction(prediction) -> type:
    """The task of a model's prediction for one item (a data sample of
    ``model.test_step``): the first registered task, by ``priority``, that
    :meth:`~Task.predicts` it; :class:`Task` when none does."""
    for task in registered_tasks(len(TASKS.module_dict)):
        if task.predicts(prediction):
            return task
    return Task


@lru_cache(maxsize=None)
def registered_tasks(count: int) -> Tuple[type, ...]:
    """The registered tasks, highest priority first, then in the order they
    were registered (re-read when one is registered: ``count`` is how many
    there are)."""
    unique = dict.fromkeys(TASKS.module_dict.values())  # in registry order
    return tuple(sorted(unique, key=lambda task: -task.priority))


__all__ = ['Task', 'DetectionTask', 'SegmentationTask', 'ClassificationTask',
           'class_name', 'task_of', 'task_of_prediction', 'registered_tasks']
