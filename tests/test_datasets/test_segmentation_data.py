"""The segmentation data path: GTA5 ids, the revealing transform, the
domain-balanced sampler, and mmseg's own datasets over the generated set."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.registry import TRANSFORMS, init_default_scope
from PIL import Image

from conftest import PYTHONPATH, REPO
from mmsaal.datasets import GTAVDataset, label_ids_to_train_ids
from mmsaal.datasets.samplers import LabeledSetSampler
from mmsaal.pool import revealed_mask_path


def test_label_ids_map_to_cityscapes_train_ids():
    ids = np.array([[7, 8, 11, 26], [33, 0, 1, 34]])
    assert label_ids_to_train_ids(ids).tolist() == [[0, 1, 2, 13],
                                                    [18, 255, 255, 255]]


def test_the_gta_converter_writes_train_ids_next_to_palette_labels(tmp_path):
    labels = tmp_path / 'gta' / 'labels'
    labels.mkdir(parents=True)
    ids = np.random.default_rng(0).integers(0, 40, (20, 30)).astype(np.uint8)
    palette_image = Image.fromarray(ids, mode='P')
    palette_image.putpalette(list(range(256)) * 3)
    palette_image.save(labels / '00001.png')
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'dataset_converters',
                                  'gta.py'), str(tmp_path / 'gta')],
        capture_output=True, text=True, env=dict(PYTHONPATH=PYTHONPATH),
        cwd=REPO)
    assert result.returncode == 0, result.stderr
    written = np.asarray(Image.open(labels / '00001_labelTrainIds.png'))
    np.testing.assert_array_equal(written, label_ids_to_train_ids(ids))
    missing = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'dataset_converters',
                                  'gta.py'), str(tmp_path / 'nowhere')],
        capture_output=True, text=True, env=dict(PYTHONPATH=PYTHONPATH),
        cwd=REPO)
    assert missing.returncode != 0 and 'does not exist' in missing.stderr


def test_mmseg_reads_the_generated_domains(street_domains):
    init_default_scope('mmseg')
    from mmseg.datasets import CityscapesDataset
    source = GTAVDataset(
        data_root=osp.join(street_domains, 'gta'),
        data_prefix=dict(img_path='images', seg_map_path='labels'))
    target = CityscapesDataset(
        data_root=osp.join(street_domains, 'cityscapes'),
        data_prefix=dict(img_path='leftImg8bit/train',
                         seg_map_path='gtFine/train'))
    assert (len(source), len(target)) == (16, 16)
    label = cv2.imread(source.get_data_info(0)['seg_map_path'],
                       cv2.IMREAD_UNCHANGED)
    assert set(np.unique(label)) <= {0, 1, 2, 8, 10, 13, 255}
    assert source.metainfo['classes'] == target.metainfo['classes']


@pytest.fixture
def encoded_sample(tmp_path):
    """An image whose pixels carry their label and revealed flag, so a
    transformed sample shows whether labels and mask stayed aligned."""
    rng = np.random.default_rng(0)
    # Blocks of 8x8 pixels, so that resizing keeps most pixels exact.
    block = np.ones((8, 8), dtype=np.uint8)
    label = np.kron(rng.integers(0, 19, (5, 8)), block).astype(np.uint8)
    revealed = np.kron(rng.random((5, 8)) < 0.4, block).astype(np.uint8)
    image = np.stack([label * 10, revealed * 200, np.zeros_like(label)], -1)
    img_path = str(tmp_path / 'frame_leftImg8bit.png')
    cv2.imwrite(img_path, image)
    cv2.imwrite(str(tmp_path / 'label.png'), label)
    mask_dir = tmp_path / 'revealed'
    mask_dir.mkdir()
    cv2.imwrite(revealed_mask_path(str(mask_dir), img_path), revealed)
    return dict(img_path=img_path, seg_map_path=str(tmp_path / 'label.png'),
                reduce_zero_label=False, seg_fields=[]), str(mask_dir)


@pytest.mark.parametrize('seed', range(4))
def test_hidden_pixels_stay_aligned_through_crops_and_flips(
        encoded_sample, seed):
    init_default_scope('mmseg')
    results, mask_dir = encoded_sample
    pipeline = [
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(
            dict(type='mmsaal.LoadRevealedAnnotations',
                 revealed_dir=mask_dir)),
        TRANSFORMS.build(dict(type='RandomResize', scale=(96, 64),
                              ratio_range=(0.8, 1.5), keep_ratio=True)),
        TRANSFORMS.build(dict(type='RandomCrop', crop_size=(25, 35))),
        TRANSFORMS.build(dict(type='RandomFlip', prob=0.5,
                              direction=['horizontal', 'vertical'])),
    ]
    np.random.seed(seed)
    out = dict(results)
    for transform in pipeline:
        out = transform(out)
    image, gt = out['img'], out['gt_seg_map']
    assert gt.shape == image.shape[:2] == (25, 35)
    # Resizing blurs the image at block borders: check the pixels inside
    # blocks, where the 3x3 neighbourhood is uniform.
    kernel = np.ones((3, 3), np.uint8)
    check = np.ones(gt.shape, bool)
    for channel in (0, 1):
        plane = np.ascontiguousarray(image[..., channel])
        check &= cv2.erode(plane, kernel) == cv2.dilate(plane, kernel)
    expected = np.where(image[..., 1] == 200, image[..., 0] // 10, 255)
    assert check.mean() > 0.3
    np.testing.assert_array_equal(gt[check], expected[check])
    assert (gt == 255).any() and (gt != 255).any()


def test_loading_an_image_without_a_mask_is_a_clear_error(encoded_sample,
                                                          tmp_path):
    init_default_scope('mmseg')
    results, _ = encoded_sample
    load = TRANSFORMS.build(
        dict(type='mmsaal.LoadRevealedAnnotations',
             revealed_dir=str(tmp_path / 'empty')))
    with pytest.raises(FileNotFoundError, match='no revealed pixels'):
        load(dict(results))
    unset = TRANSFORMS.build(dict(type='mmsaal.LoadRevealedAnnotations'))
    with pytest.raises(ValueError, match='revealed_dir is not set'):
        unset(dict(results))


class Items:

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n




class Concat:
    """The two parts of a domain-adaptive ConcatDataset."""

    def __init__(self, source, target):
        self.datasets = [Items(source), Items(target)]

    def __len__(self):
        return sum(len(d) for d in self.datasets)


def test_the_source_is_always_iterated_and_the_target_only_when_labeled():
    sampler = LabeledSetSampler(Concat(6, 4), seed=0, pool_index=1)
    assert sampler.pool_size == 4
    sampler.set_labeled([])
    assert sorted(sampler) == list(range(6))
    sampler.set_labeled([1, 3])
    assert sorted(sampler) == [0, 1, 2, 3, 4, 5, 7, 9]


@pytest.mark.parametrize('world_size', [1, 2])
def test_balanced_batches_pair_source_and_target(world_size):
    for rank in range(world_size):
        sampler = LabeledSetSampler(Concat(6, 10), seed=0, pool_index=-1,
                                    balance=True)
        sampler.rank, sampler.world_size = rank, world_size
        sampler.set_labeled([2, 5])
        order = list(sampler)
        assert len(order) == 2 * 6 // world_size
        is_source = [i < 6 for i in order]
        # Every consecutive pair of a rank holds one of each domain.
        assert all(a != b for a, b in zip(is_source[::2], is_source[1::2]))
        assert {i for i in order if i >= 6} <= {8, 11}
    with pytest.raises(ValueError, match='balance needs pool_index'):
        LabeledSetSampler(Concat(6, 10), balance=True)
    with pytest.raises(TypeError, match='ConcatDataset'):
        LabeledSetSampler(Items(5), pool_index=0)
