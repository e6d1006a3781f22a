"""The Label Studio oracle's conversions, without a server: which
detections become pre-annotations, and the message for a label the
dataset does not have."""
import numpy as np
import pytest

from mmsaal.oracles.label_studio.client import LabelStudioError
from mmsaal.oracles.label_studio.label_config import (box_results,
                                                      pre_annotated)
from mmsaal.datasets.label_files import label_files_of
from mmsaal.oracles.label_studio.pull import _write_boxes


def test_a_young_model_still_pre_annotates_its_best_boxes():
    scores = np.asarray([0.02, 0.2, 0.08, 0.5, 0.06, 0.04])
    keep = pre_annotated(scores, score_thr=0.3, min_boxes=3,
                         score_floor=0.05)
    assert keep.tolist() == [False, True, True, True, False, False]
    assert not pre_annotated(scores, 0.3, 3, 0.9)[:3].any()
    assert pre_annotated(scores, 0.0, 0, 0.05).all()
    results = box_results(np.asarray([[0, 0, 10, 20]]), [1], ['a', 'b'],
                          (40, 50), scores=[0.12345])
    assert results[0]['score'] == 0.1235
    assert results[0]['value']['rectanglelabels'] == ['b']
    assert results[0]['value']['width'] == 20.0


def test_an_unknown_label_is_named_with_its_task_and_image(tmp_path):
    pool_cfg = dict(type='mmsaal.PoolCocoDataset', data_root=str(tmp_path),
                    ann_file='labels.json',
                    metainfo=dict(classes=('circle', 'square')))
    image = dict(id=7, file_name='b/000008.jpg', width=100, height=80,
                 path=str(tmp_path / 'b' / '000008.jpg'))
    annotation = dict(task=42, result=[dict(
        type='rectanglelabels', from_name='label',
        value=dict(x=10, y=10, width=20, height=20,
                   rectanglelabels=['hexagon']))])
    with pytest.raises(LabelStudioError) as refused:
        _write_boxes({7: annotation}, {7: image},
                     dict(images=[image]), label_files_of(pool_cfg),
                     round_idx=1)
    message = str(refused.value)
    assert "b/000008.jpg (Label Studio task 42): a box is labeled 'hexagon'" \
        in message
    assert "['circle', 'square']" in message and 'Nothing was written' in \
        message
    assert not (tmp_path / 'labels.json').exists()
