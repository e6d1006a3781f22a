"""A new unit kind is one registered class, outside mmsaal: the toy kind of
``tests/pair_units.py`` queries whole images in pairs. A config imports it
(``custom_imports``) and names it as ``active_learning.granularity``; the
round pipeline builds it from the settings, with nothing of it in
``mmsaal/rounds``."""
import json
import os.path as osp

from conftest import quick_options, run_train_al


def test_a_unit_kind_registered_outside_mmsaal_runs_rounds(voc_shapes,
                                                           tmp_path):
    from conftest import DEMO_CONFIG
    config = tmp_path / 'pairs.py'
    config.write_text(
        f'_base_ = [{DEMO_CONFIG!r}]\n'
        "custom_imports = dict(imports=['mmsaal', 'pair_units'])\n"
        "active_learning = dict(granularity='image_pairs')\n")
    work_dir = str(tmp_path / 'run')
    run_train_al(work_dir, quick_options(voc_shapes, rounds=2, initial=10,
                                         budget=5), config=str(config))
    sizes = [len(json.load(open(osp.join(
        work_dir, 'rounds', f'round_{r:02d}', 'queried.json')))['items'])
        for r in (1, 2)]
    assert sizes == [4, 4]  # a budget of 5, in pairs


def test_an_unknown_unit_kind_names_the_registered_ones(voc_shapes,
                                                        tmp_path):
    result = run_train_al(str(tmp_path / 'run'), quick_options(
        voc_shapes) + ['active_learning.granularity=image_pairs'],
        check=False)
    assert result.returncode == 1
    assert ("granularity must be one of ('image', 'region', 'pixel'), got "
            "'image_pairs'") in result.stderr
