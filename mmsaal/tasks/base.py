# Copyright (c) mmsaal contributors. All rights reserved.
"""What a task is to the rounds: how a pool item's labels are found in its
data info (as the dataset parsed it), so that the round code reads every
task the same way."""
from typing import List, Optional, Sequence, Union


def class_name(label: int, classes: Sequence[str]) -> str:
    """A class index's name (its number when the dataset has no name)."""
    return classes[label] if label < len(classes) else str(label)


class Task:
    """The facts a round needs of a pool item of one task. A task is one
    class registered in ``mmsaal.registry.TASKS``: :func:`task_of` asks the
    registered tasks, highest ``priority`` first, which one an item's data
    info belongs to. This base is the task of an item no task claims.
    """

    #: Tasks with a higher priority are asked first.
    priority = 0
    #: Whether a queried item's classes are counted from its label map
    #: (decoded beside the next round's training), not its data info.
    counts_pixels = False

    @classmethod
    def matches(cls, info: dict) -> bool:
        """Whether an item's data info is of this task."""
        return False

    @classmethod
    def label_evidence(cls, info: dict) -> Union[bool, str]:
        """What says the item is labeled: a bool, or the label file that
        must exist."""
        return True

    @classmethod
    def item_class(cls, info: dict) -> Optional[int]:
        """The item's one class (a classification item), else None."""
        return None

    @classmethod
    def object_classes(cls, info: dict, classes: Sequence[str]) -> List[str]:
        """The class names of the item's labeled objects, for a round's
        class histogram (no image read)."""
        return []

    @classmethod
    def is_empty(cls, info: dict) -> Optional[bool]:
        """Whether the item holds nothing to label (a detection image with
        no object); None where that does not apply."""
        return None

    @classmethod
    def label_map(cls, info: dict) -> Optional[str]:
        """The item's label map file, where its labels are one."""
        return None

    @classmethod
    def query_fields(cls, info: dict) -> dict:
        """What a query's image entry (``query.json``) carries besides its
        path and size, for whoever labels it."""
        return {}

    # What the model predicts (``model.test_step``'s data samples), for the
    # uncertainty baselines (``mmsaal.pool_samplers.uncertainty``).
    @classmethod
    def predicts(cls, prediction) -> bool:
        """Whether a model's prediction for one item is of this task."""
        return False

    @classmethod
    def uncertainty(cls, sampler, prediction) -> float:
        """One item's score under an uncertainty sampler: the fields of
        ``prediction`` this task reads, handed to the sampler's scoring of
        that kind of output (``score_detections``, ``score_classes``,
        ``pixel_scores``)."""
        raise NotImplementedError(
            f'{type(sampler).__name__} cannot score a prediction with the '
            f'fields {sorted(prediction.keys())}: no registered task reads '
            f'it (mmsaal.registry.TASKS, Task.predicts)')
