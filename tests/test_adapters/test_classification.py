"""SAAL for mmpretrain classifiers on scikit-learn's real handwritten
digits: the reference's scores, the batched scopes, the baselines, the
balanced initial set, and a run through tools/train_al.py."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import (DIGITS_CONFIG, class_folder_pool,
                      first_human_round, folder_options, run_python,
                      run_train_al)


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    from mmsaal.datasets.synthetic import write_digits
    root = tmp_path_factory.mktemp('digits')
    counts = write_digits(str(root))
    assert counts == dict(train=1438, test=359)
    return str(root) + '/'


@pytest.fixture(scope='module')
def trained(digits):
    """The digits classifier (BatchNorm and all) after a few hundred
    steps, its statistics moved off their initial values, and a batch of
    pool images."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, MODELS
    cfg = Config.fromfile(DIGITS_CONFIG)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    np.random.seed(0)  # the training pipeline's random crops: the same
    # model whatever the tests before this one drew
    model = MODELS.build(cfg.model)
    model.init_weights()
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = digits
    train = DATASETS.build(dataset_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(60):
        batch = pseudo_collate([train[(step * 16 + i) % len(train)]
                                for i in range(16)])
        losses = model(**model.data_preprocessor(batch, True), mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    optimizer.zero_grad()  # no .grad left: scoring must leave none either
    model.eval()
    dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    pool = DATASETS.build(dataset_cfg)
    batch = pseudo_collate([pool[i * 37] for i in range(24)])
    return model, batch


@pytest.fixture(scope='module')
def trained64(trained):
    """The trained classifier in float64, its preprocessed images too.

    Batched and one-image-at-a-time scoring add the same terms in other
    orders; in float32 a perturbed loss came out up to 5e-5 relative
    apart on one CPU and 1e-6 on another. In float64 that noise is far
    below the 1e-5 the procedures must agree to, so a test failing here
    is a different computation, not a different CPU."""
    import copy
    model, batch = trained
    model = copy.deepcopy(model).double()
    model.data_preprocessor.register_forward_hook(
        lambda module, args, out: dict(out, inputs=out['inputs'].double()))
    return model, batch


@pytest.mark.parametrize('per_sample', ['batched', 'per_image'])
@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_scope_all_scores_equal_the_reference_procedure(trained64, mode,
                                                        per_sample,
                                                        monkeypatch):
    """perturb_scope='all' gives each image the reference's own score: a
    deep copy per image, the cross-entropy against the argmax backward
    into every weight, the ASAM (or SAM) step, the perturbed loss; batched
    (one backward for the images' own gradients, their perturbed passes
    at once, in chunks) or one image at a time. BatchNorm stays in eval
    mode."""
    from mmsaal.adapters import classification
    from mmsaal.pool_samplers import SAALSampler
    from mmsaal.testing import naive_classification_scores
    model, batch = trained64
    before = [p.detach().clone() for p in model.parameters()]
    # Chunks of 7 images, which split the batch of 24 unevenly.
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    monkeypatch.setattr(classification, 'CHUNK_BYTES', 3 * size * 7)
    assert classification.ClassificationSAAL(model, 'all').chunk == 7
    scores = {score: np.asarray(SAALSampler(
        perturb_scope='all', perturbation=mode, score=score,
        per_sample=per_sample).score_batch(model, batch))
        for score in ('max', 'diff')}
    for score in ('max', 'diff'):
        ours = scores[score]
        pairs = naive_classification_scores(model, batch, mode=mode)
        reference = np.asarray([after if score == 'max' else after - before
                                for before, after in pairs])
        assert np.allclose(ours, reference, rtol=1e-5,
                           atol=1e-5 * np.abs(reference).max()), (
            np.abs(ours - reference).max())
    assert ours.std() > 0
    # The weights are untouched and no gradient is left behind.
    for p, q in zip(before, model.parameters()):
        assert torch.equal(p, q) and q.grad is None


def test_the_head_scope_equals_one_image_at_a_time(trained64):
    """The batched head scope is mmsaal.perturbed_loss over the head's
    weights, image by image."""
    import torch.nn.functional as F

    from mmsaal import perturbed_loss
    from mmsaal.pool_samplers import SAALSampler
    model, batch = trained64
    ours = SAALSampler(perturb_scope='head').score_batch(model, batch)
    inputs = model.data_preprocessor(batch, False)['inputs']
    params = list(model.head.parameters())
    with torch.no_grad():
        feats = model.extract_feat(inputs)
    expected = []
    for i in range(inputs.shape[0]):
        one = tuple(f[i:i + 1] for f in feats)
        label = model.head(one).argmax(1).detach()
        _, after = perturbed_loss(
            lambda: F.cross_entropy(model.head(one), label), params)
        expected.append(float(after))
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_first_order_scores_are_the_exact_rise_to_first_order(trained64):
    """First order's L1 - L0 (rho ||T g||) is the exact rise to first
    order: what it leaves out shrinks faster than the step, so a step ten
    times shorter leaves far more than ten times less out (float64, so
    the rounding of L1 - L0 is far below it)."""
    from mmsaal.pool_samplers import SAALSampler
    model, batch = trained64
    missed = []
    for rho in (1e-3, 1e-4):
        exact = SAALSampler(perturb_scope='all', score='diff', rho=rho)
        first = SAALSampler(perturb_scope='all', score='diff', rho=rho,
                            approximation='first_order')
        a = np.asarray(exact.score_batch(model, batch))
        b = np.asarray(first.score_batch(model, batch))
        assert (b > 0).all()
        missed.append(np.linalg.norm(a - b))
        assert missed[-1] < 0.2 * np.linalg.norm(a)
    # A wrong first-order term would leave out a multiple of rho: ten
    # times less for a step ten times shorter. The second-order rest
    # shrinks faster (58x measured).
    assert missed[0] / missed[1] > 20, missed


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_batched_first_order_equals_each_images_own(trained64, mode):
    """per_sample='batched' first order (every image's ||T g|| from one
    backward, never holding its gradient) equals first order one image at
    a time (its own backward, mmsaal.first_order_loss), max and diff,
    BatchNorm in eval mode."""
    from mmsaal.pool_samplers import SAALSampler
    model, batch = trained64
    for score in ('max', 'diff'):
        scores = [np.asarray(SAALSampler(
            perturb_scope='all', perturbation=mode, score=score,
            approximation='first_order',
            per_sample=per_sample).score_batch(model, batch))
            for per_sample in ('batched', 'per_image')]
        np.testing.assert_allclose(*scores, rtol=1e-10)
        assert scores[0].std() > 0
    assert all(p.grad is None for p in model.parameters())


def test_uncertainty_baselines_score_the_class_probabilities(trained):
    from mmsaal.pool_samplers import (EntropySampler, LeastConfidenceSampler,
                                      MarginSampler)
    model, batch = trained
    with torch.no_grad():
        probs = torch.stack([p.pred_score for p in model.test_step(batch)])
    top = probs.topk(2, dim=1).values
    expected = dict(
        entropy=-(probs * probs.clamp_min(1e-12).log()).sum(1),
        least=1 - top[:, 0],
        margin=1 - (top[:, 0] - top[:, 1]))
    for name, sampler in (('entropy', EntropySampler()),
                          ('least', LeastConfidenceSampler()),
                          ('margin', MarginSampler())):
        np.testing.assert_allclose(sampler.score_batch(model, batch),
                                   expected[name].numpy(), rtol=1e-5,
                                   atol=1e-7)


def test_a_balanced_initial_set_draws_each_class_alike():
    from mmsaal.oracles import draw_balanced_set
    from mmsaal.utils import FieldError
    classes = np.repeat(np.arange(10), [30, 12, 50, 8, 20, 20, 20, 20, 5, 9])
    drawn = draw_balanced_set(classes, 23, np.random.default_rng(0))
    counts = np.bincount(classes[drawn], minlength=10)
    assert len(set(drawn.tolist())) == 23 and (counts >= 2).all()
    assert counts.sum() == 23
    again = draw_balanced_set(classes, 23, np.random.default_rng(0))
    assert drawn.tolist() == again.tolist()
    with pytest.raises(FieldError, match='class 8 has 5 pool items'):
        draw_balanced_set(classes, 60, np.random.default_rng(0))
    with pytest.raises(FieldError, match='have no class'):
        draw_balanced_set(None, 20, np.random.default_rng(0))


def test_two_rounds_on_the_digits_through_train_al(digits, tmp_path):
    """The demo config, shortened: a balanced initial set of 20, two SAAL
    rounds of 10, accuracy per round in the report."""
    work_dir = str(tmp_path / 'run')
    options = [
        f'train_dataloader.dataset.data_root={digits}',
        f'val_dataloader.dataset.data_root={digits}',
        f'test_dataloader.dataset.data_root={digits}',
        'active_learning.num_rounds=2', 'active_learning.epochs_per_round=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
    ]
    result = run_train_al(work_dir, options, config=DIGITS_CONFIG)
    rows = json.load(open(osp.join(work_dir, 'report.json')))
    assert [r['labeled'] for r in rows] == [20, 30, 40]
    assert all('accuracy/top1' in r['metrics'] for r in rows)
    assert rows[0]['queried_classes'] == {str(c): 2 for c in range(10)}
    assert 'SAALSampler' in rows[1]['strategy']
    assert sum(rows[1]['queried_classes'].values()) == 10
    scores = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                     'scores.json')))['items']
    assert len(scores) == 1438 - 20
    assert 'Active learning summary' in result.stdout + result.stderr

    # tools/analysis_tools/score_agreement.py on the same run: each round's
    # candidates scored again by the checkpoint that scored them (the
    # recorded scores come back) and by the first-order variant.
    out = tmp_path / 'agreement.json'
    agreement = run_python(
        'tools/analysis_tools/score_agreement.py',
        [DIGITS_CONFIG, work_dir, '--variant', 'approximation=first_order',
         '--check', '8', '--out', out, '--cfg-options'] + options[:3])
    assert agreement.returncode == 0, agreement.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [(r['round'], r['candidates'], r['k']) for r in rows] == [
        (1, 1418, 10), (2, 1408, 10)]
    assert all(r['check_max_rel_diff'] < 1e-4 for r in rows), rows
    assert all(-1 <= r['spearman'] <= 1 and 0 <= r['top_k_overlap'] <= 1
               for r in rows)
    assert 'mean over 2 rounds' in agreement.stdout


def test_a_class_folder_pool_is_labeled_by_moving_images(digits, tmp_path):
    """Class folders with 2 images each and 100 in unlabeled/: the run
    starts from the 20, queries 10 of the unlabeled, and goes on once the
    person has moved them into their class folders."""
    root, config, truth = class_folder_pool(digits, tmp_path)
    work_dir = str(tmp_path / 'run')
    _, images = first_human_round(
        work_dir, folder_options(root), config, '20 of 120',
        "move each out of the pool's unlabeled/ folder")
    queried = [image['file_name'] for image in images]
    assert len(queried) == 10
    unlabeled = osp.join(root, 'train', 'unlabeled')
    assert set(queried) <= set(os.listdir(unlabeled))
    for name in queried:  # the person sorts them into their folders
        os.rename(osp.join(unlabeled, name),
                  osp.join(root, 'train', truth[name], name))
    run_train_al(work_dir, folder_options(root), config=config,
                 extra=['--resume'])
    round_1 = osp.join(work_dir, 'rounds', 'round_01')
    labeled = json.load(open(osp.join(round_1, 'labeled.json')))
    assert len(labeled['items']) == 30
    added = json.load(open(osp.join(round_1, 'queried.json')))
    assert sorted(i['name'] for i in added['items']) == sorted(queried)
    rows = json.load(open(osp.join(work_dir, 'report.json')))
    assert sum(rows[1]['queried_classes'].values()) == 10
    assert len(os.listdir(unlabeled)) == 90


def test_the_class_folders_record_every_move(tmp_path):
    """ClassFolders moves a queried image into its class, records the
    move first, leaves an image already there, moves one labeled anew, and
    refuses an unknown class naming the classes."""
    from mmsaal.datasets.label_files import ClassFolders
    from mmsaal.utils import WorkDirError
    for folder in ('cat', 'dog', 'unlabeled'):
        (tmp_path / folder).mkdir()
    for name in ('a.png', 'b.png'):
        (tmp_path / 'unlabeled' / name).write_bytes(b'x')
    files = ClassFolders(dict(data_root=str(tmp_path)))
    assert files.classes == ['cat', 'dog']
    done = files.write_classes({'a.png': 'cat', 'b.png': 'dog'}, 1)
    assert done.images == 2 and not done.replaced
    assert json.load(open(done.backups[0])) == [
        [str(tmp_path / 'unlabeled' / 'a.png'), str(tmp_path / 'cat' /
                                                    'a.png')],
        [str(tmp_path / 'unlabeled' / 'b.png'), str(tmp_path / 'dog' /
                                                    'b.png')]]
    assert not files.write_classes({'a.png': 'cat'}, 1).changed
    again = files.write_classes({'a.png': 'dog'}, 1)
    assert again.replaced == ['a.png']
    assert (tmp_path / 'dog' / 'a.png').exists()
    assert len(json.load(open(again.backups[0]))) == 3
    with pytest.raises(WorkDirError, match=r"'bird' is not one of the "
                       r"pool's \['cat', 'dog'\]"):
        files.write_classes({'b.png': 'bird'}, 1)
