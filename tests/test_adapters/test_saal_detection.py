"""SAAL over real mmdet detectors (tiny variants of mmdet's own configs)."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hub import get_config
from mmengine.registry import MODELS, init_default_scope

from conftest import DEMO_CONFIG, data_options, float32_rise_tolerance
from mmsaal.adapters import base as adapters_base
from mmsaal.adapters.base import checkpoint_blocks
from mmsaal.adapters.detection import (SingleStageHeads, TwoStageHeads,
                                       head_calls)
from mmsaal.rounds.pool_dataset import build_pool_dataset
from mmsaal.pool_samplers import SAALSampler
from mmsaal.testing import naive_detection_scores

TINY_BACKBONE = dict(
    type='ResNet', depth=18, base_channels=16, num_stages=4,
    out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'), norm_eval=False,
    style='pytorch', init_cfg=None)
TINY_NECK = dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=32,
                 start_level=1, add_extra_convs='on_input', num_outs=5)


def demo_cfg(data_root):
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict(
        dict(option.split('=', 1) for option in data_options(data_root)))
    return cfg


def detector(kind: str, cfg: Config):
    init_default_scope('mmdet')
    if kind == 'faster_rcnn':
        model_cfg = copy.deepcopy(cfg.model)
    elif kind == 'retinanet':
        retinanet = get_config('mmdet::_base_/models/retinanet_r50_fpn.py',
                               pretrained=False)
        retinanet.merge_from_dict(dict(model=dict(
            backbone=TINY_BACKBONE, neck=TINY_NECK,
            bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32,
                           stacked_convs=1))))
        model_cfg = retinanet.model
    else:  # fcos
        model_cfg = Config(dict(model=dict(
            type='FCOS',
            data_preprocessor=cfg.model.data_preprocessor,
            backbone=TINY_BACKBONE, neck=TINY_NECK,
            bbox_head=dict(
                type='FCOSHead', num_classes=3, in_channels=32,
                feat_channels=32, stacked_convs=1, strides=[8, 16, 32, 64,
                                                             128],
                norm_cfg=dict(type='GN', num_groups=8),
                loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                              alpha=0.25, loss_weight=1.0),
                loss_bbox=dict(type='IoULoss', loss_weight=1.0),
                loss_centerness=dict(type='CrossEntropyLoss',
                                     use_sigmoid=True, loss_weight=1.0)),
            train_cfg=dict(assigner=dict(type='MaxIoUAssigner',
                                         pos_iou_thr=0.5, neg_iou_thr=0.4,
                                         min_pos_iou=0, ignore_iof_thr=-1),
                           allowed_border=-1, pos_weight=-1, debug=False),
            test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0,
                          nms=dict(type='nms', iou_threshold=0.5),
                          max_per_img=20)))).model
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    return model


@pytest.fixture(scope='module')
def batches(voc_shapes):
    cfg = demo_cfg(voc_shapes)
    init_default_scope('mmdet')
    dataset = build_pool_dataset(cfg)
    return cfg, [pseudo_collate([dataset[i]]) for i in range(3)]


# Untrained weights: a threshold of 0 turns their top detections into
# pseudo boxes, so the loss has foreground terms.
SCORING = dict(score_thr=0.0, max_pseudo_per_img=5)


@pytest.mark.parametrize('kind', ['faster_rcnn', 'retinanet', 'fcos'])
@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_all_scope_equals_the_naive_deepcopy_procedure(batches, kind, mode):
    cfg, data = batches
    model = detector(kind, cfg)
    sampler = SAALSampler(perturbation=mode, perturb_scope='all',
                          score='diff', rho=0.05, **SCORING)
    adapter = sampler.adapter(model)
    for batch in data:
        ours = adapter.instance_losses(batch, 0.05, mode)
        reference = naive_detection_scores(model, batch, rho=0.05, mode=mode,
                                           **SCORING)
        ours = np.array([[float(a), float(b)] for a, b in ours])
        reference = np.array(reference)
        # L0 involves no perturbation: it must match tightly. L1 of an
        # untrained detector can move by ~1e-4 when a last-bit difference in
        # eps swaps two near-tied proposals (seen once in many runs; the
        # usual agreement is ~1e-7).
        np.testing.assert_allclose(ours[:, 0], reference[:, 0], rtol=1e-5)
        np.testing.assert_allclose(ours[:, 1], reference[:, 1], rtol=1e-3)
        assert reference[0][1] != reference[0][0]


@pytest.mark.parametrize('scope', ['head', ['roi_head.', 'bbox_head.']])
@pytest.mark.parametrize('kind, heads', [('faster_rcnn', TwoStageHeads),
                                         ('retinanet', SingleStageHeads),
                                         ('fcos', SingleStageHeads)])
def test_head_calls_on_cached_features_equal_the_detectors_own_loss(
        batches, kind, heads, scope):
    """With backbone and neck fixed, the heads run on the cached features
    directly; the result is the detector's own loss()/predict() with
    extract_feat answering from the cache (the generic way), bit for bit."""
    cfg, data = batches
    model = detector(kind, cfg)
    # The exact path: the generic way cannot keep RoIs.
    direct = SAALSampler(perturb_scope=scope, recompute_proposals=True,
                         **SCORING).adapter(model)
    generic = SAALSampler(perturb_scope=scope, recompute_proposals=True,
                          **SCORING).adapter(model)
    generic.heads = None
    assert isinstance(direct.heads, heads)
    for batch in data:
        for (a0, a1), (b0, b1) in zip(
                direct.instance_losses(batch, 0.05, 'adaptive'),
                generic.instance_losses(batch, 0.05, 'adaptive')):
            assert torch.equal(a0, b0) and torch.equal(a1, b1)


def test_a_detector_with_its_own_loss_takes_the_generic_way(batches):
    cfg, _ = batches
    model = detector('faster_rcnn', cfg)

    class OwnLoss(type(model)):
        def loss(self, *args, **kwargs):
            return super().loss(*args, **kwargs)

    model.__class__ = OwnLoss
    assert head_calls(model) is None
    assert SAALSampler(**SCORING).adapter(model).heads is None


@pytest.mark.parametrize('kind', ['faster_rcnn', 'retinanet'])
def test_scoring_leaves_the_model_as_it_was(batches, kind):
    cfg, data = batches
    model = detector(kind, cfg)
    model.train()
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    sampler = SAALSampler(**SCORING)
    for scope in ('head', 'neck+head', 'all', ['roi_head.', 'bbox_head.']):
        sampler.perturb_scope = scope
        model.eval()
        scores = sampler.score_batch(model, data[0])
        model.train()
        assert np.isfinite(scores).all() and scores[0] > 0
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshot[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_head_scope_caches_features_and_shares_the_original_loss(batches):
    cfg, data = batches
    model = detector('faster_rcnn', cfg)
    calls = []
    original = model.backbone.forward
    model.backbone.forward = lambda x: calls.append(1) or original(x)
    head = SAALSampler(perturb_scope='head', **SCORING).adapter(model)
    everything = SAALSampler(perturb_scope='all', **SCORING).adapter(model)
    assert head.stage == 'extract_feat'
    assert all(not n.startswith(('backbone', 'neck'))
               for n, _ in model.named_parameters()
               if any(p is _ for p in head.params))
    (h0, h1), = head.instance_losses(data[0], 0.05, 'adaptive')
    assert len(calls) == 1  # once per batch, not once per loss pass
    (a0, a1), = everything.instance_losses(data[0], 0.05, 'adaptive')
    assert float(h0) == pytest.approx(float(a0), rel=1e-5)
    assert float(h1) != pytest.approx(float(a1), rel=1e-5)


def test_an_image_without_pseudo_boxes_is_scored_on_its_background(batches):
    cfg, data = batches
    model = detector('faster_rcnn', cfg)
    sampler = SAALSampler(score_thr=1.01)  # no detection passes
    adapter = sampler.adapter(model)
    data_sample = adapter.model.data_preprocessor(data[0], False)
    # A plain SAM step: its ascent (~0.15 here) dwarfs the jitter of the
    # RPN's near-tied proposals under untrained weights (~1e-3 and
    # platform-dependent), which can outweigh an adaptive step's ascent.
    (before, after), = adapter.instance_losses(data[0], 0.05, 'sam')
    assert torch.isfinite(before) and before > 0
    assert after > before + 0.01
    assert data_sample['data_samples'][0].img_path


def test_same_seed_same_scores_other_seed_other_draws(batches):
    cfg, data = batches
    model = detector('faster_rcnn', cfg)
    first = SAALSampler(seed=0, **SCORING).score_batch(model, data[1])
    torch.manual_seed(123)  # global RNG state must not matter
    again = SAALSampler(seed=0, **SCORING).score_batch(model, data[1])
    other = SAALSampler(seed=1, **SCORING).score_batch(model, data[1])
    assert first == again
    assert first != other  # proposal / RoI sampling draws differ


def test_bad_sampler_fields_are_refused():
    with pytest.raises(ValueError, match='SAALSampler.perturbation'):
        SAALSampler(perturbation='asam')
    with pytest.raises(ValueError, match='SAALSampler.score'):
        SAALSampler(score='mean')
    with pytest.raises(ValueError, match='rho'):
        SAALSampler(rho=0)
    with pytest.raises(ValueError, match='impurity_radius'):
        SAALSampler(impurity_radius=0)


def test_impurity_weighting_is_refused_for_a_detector(batches):
    cfg, _ = batches
    with pytest.raises(ValueError,
                       match='impurity_radius=1 weighs segmentation'):
        SAALSampler(impurity_radius=1, **SCORING).adapter(
            detector('faster_rcnn', cfg))


def test_checkpointed_backbone_scores_the_same_and_is_restored(
        batches, monkeypatch):
    # A config that already checkpoints its backbone (with_cp=True, mmdet's
    # reentrant variant) used to fail under torch.autograd.grad.
    cfg, data = batches
    plain = detector('faster_rcnn', cfg)
    with_cp_cfg = copy.deepcopy(cfg)
    with_cp_cfg.model.backbone.with_cp = True
    checkpointed = detector('faster_rcnn', with_cp_cfg)
    blocks = checkpoint_blocks(checkpointed.backbone)
    assert len(blocks) == 8  # ResNet-18: 2 BasicBlocks in each of 4 stages
    settings = dict(perturb_scope='all', **SCORING)
    reference = SAALSampler(with_cp=False, **settings).score_batch(
        plain, data[1])
    calls = []
    checkpoint = adapters_base.checkpoint
    monkeypatch.setattr(adapters_base, 'checkpoint',
                        lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    for model, own in ((plain, False), (checkpointed, True)):
        for with_cp in (None, True, False):
            del calls[:]
            scores = SAALSampler(with_cp=with_cp, **settings).score_batch(
                model, data[1])
            np.testing.assert_allclose(scores, reference, rtol=1e-6)
            assert bool(calls) == (own if with_cp is None else with_cp)
    del calls[:]
    SAALSampler(with_cp=True, **SCORING).score_batch(plain, data[1])
    assert not calls  # 'head': the backbone runs once, without autograd
    assert all(block.with_cp for block in blocks)
    assert not any('forward' in block.__dict__ for block in blocks)


def test_a_segmentation_field_is_refused_for_a_detector(batches):
    cfg, data = batches
    model = detector('faster_rcnn', cfg)
    with pytest.raises(ValueError,
                       match='score_resolution=0.5 does not apply to a '
                       'FasterRCNN'):
        SAALSampler(score_resolution=0.5).adapter(model)
    with pytest.raises(NotImplementedError, match='scores whole items'):
        SAALSampler().score_maps(model, data[0])


@pytest.mark.parametrize('kind, scope', [
    # The RoI head alone: with the RPN fixed the proposals cannot flip
    # between the two passes, which on untrained weights swamps the rise.
    ('faster_rcnn', ['roi_head.']),
    ('retinanet', 'head'),
    ('fcos', 'head'),
])
def test_first_order_scores_are_the_exact_rise_to_first_order(
        batches, kind, scope):
    """approximation='first_order': L0 as the exact path has it, and
    L1 - L0 = rho * ||T g||, which a perturbed pass at a small radius
    matches."""
    cfg, data = batches
    model = detector(kind, cfg)
    model.eval()
    rho = 1e-3
    exact = SAALSampler(rho=rho, perturb_scope=scope, **SCORING)
    first = SAALSampler(rho=rho, perturb_scope=scope,
                        approximation='first_order', **SCORING)
    adapter = exact.adapter(model)
    for batch in data:
        (b0, b1), = adapter.instance_losses(batch, rho, 'adaptive')
        (f0, f1), = adapter.instance_losses(batch, rho, 'adaptive',
                                            approximation='first_order')
        assert float(f0) == pytest.approx(float(b0), rel=1e-6)
        # Faster R-CNN: L0 about 2.25, the rise 3e-5, some 128 ulps.
        assert float(f1 - f0) == pytest.approx(
            float(b1 - b0), rel=0.01, abs=float32_rise_tolerance(b0))
        assert first.score_batch(model, batch) == [float(f1)]


def test_first_order_refuses_what_it_cannot_score():
    sampler = SAALSampler(approximation='first_order')
    sampler.check_granularity('image')
    for granularity in ('region', 'pixel'):
        with pytest.raises(ValueError, match='gives no pixel maps'):
            sampler.check_granularity(granularity)
    with pytest.raises(ValueError, match='approximation must be one of'):
        SAALSampler(approximation='second_order')
    with pytest.raises(ValueError, match='impurity_radius weighs pixel'):
        SAALSampler(approximation='first_order', impurity_radius=1)


def hand_written_fixed_roi_losses(model, batch, rho, mode):
    """L0 and L1 of one image with the RPN targets and the sampled RoIs of
    the unperturbed pass held fixed, written out on a copy of the model:
    the unperturbed loss (mmdet's RPN loss + StandardRoIHead.loss, recording
    the targets and the sampling), its gradient over the heads, the ascent
    step, then the perturbed heads on those targets and RoIs (RoIAlign run
    again from the features)."""
    from mmdet.models.utils import unpack_gt_instances
    from mmdet.structures.bbox import bbox2roi

    from mmsaal import ascent_step
    from mmsaal.adapters.base import instance_seed, seeded
    from mmsaal.adapters.detection import pseudo_sample
    model = copy.deepcopy(model)
    data = model.data_preprocessor(batch, False)
    sample = data['data_samples'][0]
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        prediction = model.predict(data['inputs'], [sample],
                                   rescale=False)[0]
    pseudo = pseudo_sample(sample, prediction, SCORING['score_thr'],
                           SCORING['max_pseudo_per_img'])
    rpn_sample = copy.deepcopy(pseudo)
    rpn_sample.gt_instances.labels[:] = 0
    gts, ignored, metas = unpack_gt_instances([rpn_sample])
    rpn, roi = model.rpn_head, model.roi_head
    seen = {}
    get_targets, bbox_loss = rpn.get_targets, roi.bbox_loss

    def recording_targets(*args, **kwargs):
        seen['targets'] = get_targets(*args, **kwargs)
        return seen['targets']

    def recording_sampling(x, sampling_results):
        seen['sampling'] = sampling_results
        return bbox_loss(x, sampling_results)

    rpn.get_targets, roi.bbox_loss = recording_targets, recording_sampling
    params = [p for n, p in model.named_parameters()
              if n.startswith(('rpn_head.', 'roi_head.'))]
    with seeded(instance_seed(0, sample.img_path)):
        out = rpn(feats)
        losses = rpn.loss_by_feat(*out, gts, metas, ignored)
        proposals = rpn.predict_by_feat(
            *out, batch_img_metas=metas,
            cfg=model.train_cfg.get('rpn_proposal', model.test_cfg.rpn))
        losses.update(roi.loss(feats, proposals, [pseudo]))
    del rpn.get_targets, roi.bbox_loss
    before = sum(sum(v) if isinstance(v, list) else v
                 for k, v in losses.items() if 'loss' in k)
    grads = torch.autograd.grad(before, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g
             for p, g in zip(params, grads)]
    with torch.no_grad():
        for param, step in zip(params, ascent_step(params, grads, rho, mode)):
            param.add_(step)
        rpn.get_targets = lambda *args, **kwargs: seen['targets']
        after = rpn.loss_by_feat(*rpn(feats), gts, metas, ignored)
        rois = bbox2roi([res.priors for res in seen['sampling']])
        cls_score, bbox_pred = roi.bbox_head(roi.bbox_roi_extractor(
            feats[:roi.bbox_roi_extractor.num_inputs], rois))
        after.update(roi.bbox_head.loss_and_target(
            cls_score, bbox_pred, rois, seen['sampling'],
            roi.train_cfg)['loss_bbox'])
    after = sum(sum(v) if isinstance(v, list) else v
                for k, v in after.items() if 'loss' in k)
    return float(before), float(after)


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_fixed_rois_give_the_hand_written_loss_on_the_same_rois(batches, mode):
    """recompute_proposals=False: L0 is the exact path's, and L1 equals
    the perturbed heads written out on the unperturbed pass's targets and
    RoIs."""
    cfg, data = batches
    model = detector('faster_rcnn', cfg)
    model.eval()
    fixed = SAALSampler(recompute_proposals=False, **SCORING).adapter(model)
    exact = SAALSampler(recompute_proposals=True, **SCORING).adapter(model)
    assert fixed.fixed_rois and not exact.fixed_rois
    # The default keeps the RoIs where it can.
    assert SAALSampler(**SCORING).adapter(model).fixed_rois
    assert not SAALSampler(perturb_scope='all', **SCORING).adapter(
        model).fixed_rois
    for batch in data:
        (f0, f1), = fixed.instance_losses(batch, 0.05, mode)
        (e0, _), = exact.instance_losses(batch, 0.05, mode)
        h0, h1 = hand_written_fixed_roi_losses(model, batch, 0.05, mode)
        assert float(f0) == pytest.approx(float(e0), rel=1e-6)
        assert float(f0) == pytest.approx(h0, rel=1e-5)
        assert float(f1) == pytest.approx(h1, rel=1e-5)
        assert float(f1) > float(f0)


def test_fixed_rois_are_refused_where_there_are_none(batches):
    cfg, _ = batches
    for kind, scope in [('retinanet', 'head'), ('faster_rcnn', 'all')]:
        with pytest.raises(ValueError, match='recompute_proposals=True'):
            SAALSampler(recompute_proposals=False, perturb_scope=scope,
                        **SCORING).adapter(detector(kind, cfg))
