"""A new oracle is one registered class, outside mmsaal: a labeling
service that returns each queried image's VOC XML into a folder of its
own. The config imports this file (``custom_imports``) and names the
oracle; ``tools/train_al.py --resume`` lets it bring the labels in
(``take_labels``) before any dataset reads them."""
import json
import os
import os.path as osp
import shutil

from conftest import PYTHONPATH, quick_options, run_train_al

#: This file is the module the configs import (custom_imports).
HERE = dict(
    PYTHONPATH=os.pathsep.join([PYTHONPATH, osp.dirname(__file__)]))

from mmsaal.oracles import HumanOracle, Taken
from mmsaal.registry import ORACLES


@ORACLES.register_module(force=True)
class AnswerFolderOracle(HumanOracle):
    """A person's answers arrive as ``{answers}/<image stem>.xml``; they
    are copied next to the queried images' other annotations.

    Args:
        answers (str): The folder the service writes its XMLs to.
    """

    name = 'answer_folder'

    def __init__(self, context, answers: str = '') -> None:
        super().__init__(context)
        self.answers = answers

    @classmethod
    def take_labels(cls, store, pool_cfg, fields, wait=0):
        round_idx = store.pending_query()
        if round_idx is None:
            return None
        with open(osp.join(store.query_dir(round_idx), 'query.json')) as f:
            images = json.load(f)['images']
        done = 0
        for image in images:
            stem = osp.splitext(osp.basename(image['path']))[0]
            answer = osp.join(fields['answers'], f'{stem}.xml')
            if osp.exists(answer):
                folder = osp.join(osp.dirname(osp.dirname(image['path'])),
                                  'Annotations')
                shutil.copyfile(answer, osp.join(folder, f'{stem}.xml'))
                done += 1
        return Taken(done, len(images), [], 'the answer folder')


def test_an_oracle_registered_outside_mmsaal_labels_a_round(voc_shapes,
                                                            tmp_path):
    from conftest import voc_pool
    root, base, taken = voc_pool(voc_shapes, tmp_path, labeled=10)
    answers = tmp_path / 'answers'
    answers.mkdir()
    config = tmp_path / 'service.py'
    config.write_text(
        f'_base_ = [{base!r}]\n'
        "custom_imports = dict(imports=['mmsaal', 'test_custom_oracle'])\n"
        f"active_learning = dict(oracle=dict(type='AnswerFolderOracle', "
        f"answers={str(answers)!r}))\n")
    options = quick_options(root, rounds=1, initial=10, budget=5,
                            sampler='EntropySampler')
    work_dir = str(tmp_path / 'run')
    first = run_train_al(work_dir, options, config=str(config), env=HERE)
    assert 'waits for labels' in first.stdout + first.stderr
    query = json.load(open(osp.join(work_dir, 'rounds', 'query_01',
                                    'query.json')))
    queried = [osp.splitext(osp.basename(i['path']))[0]
               for i in query['images']]
    for stem in queried:  # the service answers
        (answers / f'{stem}.xml').write_text(taken[stem])
    run_train_al(work_dir, options, config=str(config), extra=['--resume'],
                 env=HERE)
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))['items']
    assert len(labeled) == 15
    for stem in queried:
        assert osp.exists(osp.join(root, 'Shapes', 'Annotations',
                                   f'{stem}.xml'))
    assert not osp.exists(osp.join(work_dir, 'rounds', 'query_01'))


def test_an_oracle_field_it_does_not_take_is_named(voc_shapes, tmp_path):
    from conftest import voc_pool
    root, base, _ = voc_pool(voc_shapes, tmp_path, labeled=10)
    config = tmp_path / 'service.py'
    config.write_text(
        f'_base_ = [{base!r}]\n'
        "custom_imports = dict(imports=['mmsaal', 'test_custom_oracle'])\n"
        "active_learning = dict(oracle=dict(type='AnswerFolderOracle', "
        "answer='typo'))\n")
    result = run_train_al(str(tmp_path / 'run'), quick_options(root),
                          config=str(config), check=False, env=HERE)
    assert result.returncode == 1
    assert ('ActiveLearningHook.oracle.answer is not a field of '
            "AnswerFolderOracle; it takes ('answers',)") in result.stderr
    assert not os.path.exists(tmp_path / 'run')
