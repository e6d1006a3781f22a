"""Heads run for several images at once, each under its own weights
(mmsaal.adapters.batched): equal to moving a copy of the head to each
image's weights and calling it, for the RoI head's FCs and the dense heads
(grouped convolutions); and the tool that times it runs."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from conftest import DEMO_CONFIG, PYTHONPATH, REPO, data_options, run_python
from mmsaal.adapters.batched import batched_forward, stacked_weights

RETINANET = osp.join(REPO, 'configs', 'benchmark',
                     'saal_tiny_retinanet_shapes.py')
FCOS = osp.join(REPO, 'configs', 'benchmark', 'saal_tiny_fcos_shapes.py')


def build(config):
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def random_steps(module, count):
    return [{n: 1e-2 * torch.randn_like(p)
             for n, p in module.named_parameters()} for _ in range(count)]


def moved_copy(module, step):
    """The head at one image's weights, the plain way."""
    moved = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(step[name])
    return moved


def assert_outputs_equal(batched, looped):
    leaves = torch.utils._pytree.tree_leaves
    for b, l in zip(leaves(batched), leaves(looped), strict=True):
        torch.testing.assert_close(b, l, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('config', [DEMO_CONFIG, RETINANET, FCOS],
                         ids=['faster_rcnn', 'retinanet', 'fcos'])
def test_a_dense_head_under_per_image_weights_equals_each_moved_copy(
        config):
    model = build(config)
    head = model.rpn_head if getattr(model, 'with_rpn', False) \
        else model.bbox_head
    feats = model.extract_feat(torch.randn(3, 3, 64, 64))
    steps = random_steps(head, 3)
    with torch.no_grad():
        batched = batched_forward(head, stacked_weights(head, steps),
                                  tuple(f.unsqueeze(1) for f in feats))
        looped = [moved_copy(head, steps[i])(
            tuple(f[i:i + 1] for f in feats)) for i in range(3)]
    stack = torch.utils._pytree.tree_map(lambda *ts: torch.stack(ts),
                                         *looped)
    assert_outputs_equal(batched, stack)
    # The steps matter: unmoved weights give other outputs.
    with torch.no_grad():
        plain = head(tuple(f[:1] for f in feats))
    assert not torch.allclose(plain[0][0], looped[0][0][0])


def test_the_roi_head_under_per_image_weights_equals_each_moved_copy():
    bbox_head = build(DEMO_CONFIG).roi_head.bbox_head
    roi_feats = torch.randn(2, 16, bbox_head.in_channels,
                            *bbox_head.roi_feat_size)
    steps = random_steps(bbox_head, 2)
    # A step for some parameters only leaves the others as they are.
    steps[1] = {n: s for n, s in steps[1].items() if 'shared_fcs' in n}
    with torch.no_grad():
        cls_score, bbox_pred = batched_forward(
            bbox_head, stacked_weights(bbox_head, steps), roi_feats)
        for i in range(2):
            full = {n: steps[i].get(n, torch.zeros_like(p))
                    for n, p in bbox_head.named_parameters()}
            cls_i, bbox_i = moved_copy(bbox_head, full)(roi_feats[i])
            torch.testing.assert_close(cls_score[i], cls_i)
            torch.testing.assert_close(bbox_pred[i], bbox_i)


def test_the_timing_tool_prints_both_heads_and_their_difference(
        voc_shapes):
    result = run_python(
        'tools/misc/batched_heads.py',
        [DEMO_CONFIG, '--images', '2', '--repeats', '1', '--cfg-options',
         *data_options(voc_shapes)],
        env={'PYTHONPATH': PYTHONPATH, 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [line.split() for line in result.stdout.splitlines()
            if line.startswith(('dense head', 'RoI head'))]
    assert [r[0] + ' ' + r[1] for r in rows] == ['dense head', 'RoI head']
    for row in rows:
        loop, batched, ratio, diff = map(float, row[-4:])
        assert loop > 0 and batched > 0 and diff < 1e-4
