"""A toy task, registered outside mmsaal (tests/test_tasks/test_custom_task.py): the
digits' items counted as even or odd. A config imports it with
``custom_imports``; the pytest process never does, so no other test's
classification items change task."""
from mmsaal.registry import TASKS
from mmsaal.tasks import ClassificationTask


@TASKS.register_module()
class ParityTask(ClassificationTask):
    """Digits, counted by parity."""

    priority = 1

    @classmethod
    def object_classes(cls, info, classes):
        return ['odd' if int(info['gt_label']) % 2 else 'even']
