# Copyright (c) mmsaal contributors. All rights reserved.
"""Assemble a :class:`RoundPipeline` from the ``active_learning`` fields."""
import os.path as osp

from mmsaal.datasets.transforms import reads_revealed_masks
from mmsaal.oracles import LabelingContext, build_oracle
from mmsaal.pool import PixelLabels, PoolState, RoundStore
from mmsaal.registry import UNITS
from mmsaal.utils.images import check_images
from .fields import check_against_pool
from .pipeline import RoundPipeline
from .pool_dataset import PoolItems, build_pool_dataset, item_names
from .record import RoundRecorder
from .settings import ActiveLearningSettings


def build_round_pipeline(cfg, sampler, work_dir: str, title: str,
                         pool_sampler,
                         settings: ActiveLearningSettings) -> RoundPipeline:
    """The rounds over the pool of the train ``sampler``
    (``LabeledSetSampler``), as the ``active_learning`` ``settings``
    describe.

    A pool whose train pipeline reads ``LoadRevealedAnnotations`` is
    labeled pixel by pixel, whatever the granularity; region and pixel
    queries need one.
    """
    s = settings
    pool = sampler.pool
    store = RoundStore(osp.join(work_dir, s.state_dir))
    pixel_labeled = reads_revealed_masks(pool)
    unit_kind = UNITS.get(s.granularity)
    if unit_kind.needs_pixel_labels and not pixel_labeled:
        raise ValueError(
            f"ActiveLearningHook.granularity='{s.granularity}' reveals "
            f'pixels, '
            f'which the train pipeline of the pool must read through '
            f"LoadRevealedAnnotations: put dict(type='mmsaal."
            f"LoadRevealedAnnotations') in place of its LoadAnnotations, or "
            f"query whole images (granularity='image').")
    items = PoolItems.of(pool)
    pixels = PixelLabels(items.paths, store.mask_dir) if pixel_labeled \
        else None
    # Before any training: every pool image exists and decodes (an item
    # without an img_path stands as its position). A pool labeled pixel by
    # pixel reads every header for its shapes anyway; another has its
    # headers read at the first start only.
    check_images([p for i, p in enumerate(items.paths) if p != str(i)],
                 headers=pixels is None and not store.rounds())
    if pixels is not None:
        pixels.shapes  # noqa: B018 (read now: a bad image stops the start)
    state = PoolState(items.names, seed=s.seed, pixels=pixel_labeled)
    check_against_pool(state.pool_size, s.initial_labeled,
                       s.initial_labeled_file, s.budget, s.num_rounds,
                       s.granularity,
                       may_start_empty=sampler.pool_index is not None)
    units = unit_kind.from_settings(s, pixels)

    def pool_dataset():
        dataset = build_pool_dataset(cfg, s.pool_pipeline, sampler.pool_index)
        if item_names(dataset) != state.item_names:
            raise RuntimeError(
                'the pool dataset built for scoring does not list the same '
                'items as the train dataset; check that '
                'train_dataloader.dataset builds the same way with the test '
                'pipeline')
        return dataset

    labeler = build_oracle(s.oracle, LabelingContext(
        pool, store, units, state.item_names, work_dir, cfg.filename, items,
        pool_dataset, s.initial_balanced))
    recorder = RoundRecorder(store, state, units, pool, work_dir,
                             f'Active learning: {title}')
    return RoundPipeline(pool_sampler, units, labeler, state, store,
                         recorder, pool_dataset, s.pool_subset,
                         s.pool_dataloader, s.cold_start_rounds)

