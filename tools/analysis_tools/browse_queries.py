# Copyright (c) mmsaal contributors. All rights reserved.
"""A contact sheet of the images one round queried: each drawn with the
model's detections (the pseudo boxes SAAL scored against) or its predicted
segmentation (the pseudo labels), the queried regions or pixels outlined, and
its score.

Example::

    python tools/analysis_tools/browse_queries.py work_dirs/demo --round 2
"""
import argparse
import json
import os.path as osp

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import VISUALIZERS, init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.utils import track_iter_progress

import mmsaal  # noqa: F401
from mmsaal.apis.measure import build_model
from mmsaal.rounds.pool_dataset import build_pool_dataset
from mmsaal.pool import RoundStore, load_reveals
from mmsaal.utils import WorkDirError, work_dir_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--round', type=int, required=True)
    parser.add_argument('--config', help='defaults to the one in WORK_DIR')
    parser.add_argument(
        '--checkpoint',
        help='defaults to the checkpoint that scored the round, else the '
        'latest one')
    parser.add_argument('--max-images', type=int, default=16)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--tile', type=int, default=256)
    parser.add_argument('--out', help='defaults to WORK_DIR/queries_round_N.png')
    return parser.parse_args()


def queried_items(work_dir: str, round_idx: int) -> dict:
    """``queried.json`` of the round; for region/pixel queries its items are
    every image that got pixels, each with its ``regions``."""
    store = RoundStore(osp.join(work_dir, 'rounds'))
    rounds = store.rounds()
    if not rounds:
        raise SystemExit(f'{work_dir} holds no active-learning rounds')
    if round_idx not in rounds:
        raise SystemExit(f'round {round_idx} does not exist in {work_dir}; '
                         f'its rounds are {rounds}')
    folder = store.round_dir(round_idx)
    with open(osp.join(folder, 'queried.json')) as f:
        queried = json.load(f)
    regions = osp.join(folder, 'regions.json')
    if osp.exists(regions):
        with open(regions) as f:
            listing = json.load(f)
        if listing['granularity'] == 'pixel':
            # regions.json counts each image's pixels; they are in
            # revealed.npz.
            pixels = {i: r for i, r in load_reveals(
                osp.join(folder, 'revealed.npz'))}
            queried['items'] = [
                dict(item, score=item['best'], regions=[
                    [int(p) // pixels[item['index']].shape[1],
                     int(p) % pixels[item['index']].shape[1], 1, 1]
                    for p in pixels[item['index']].coords])
                for item in listing['items']
            ]
        else:
            queried['items'] = [
                dict(item, score=item['scores'][0])
                for item in listing['items'] if item['scores']
            ]
    return queried


def find_checkpoint(work_dir: str, queried: dict) -> str:
    scored_with = osp.join(work_dir, f'epoch_{queried.get("epoch")}.pth')
    if osp.exists(scored_with):
        return scored_with
    latest = osp.join(work_dir, 'last_checkpoint')
    if not osp.exists(latest):
        raise SystemExit(f'{work_dir} has no checkpoint: pass --checkpoint')
    path = open(latest).read().strip()
    print(f'{osp.basename(scored_with)} (the model that scored this round) '
          f'was not kept; drawing with {path}')
    return path


def tile(image: np.ndarray, size: int, caption: str) -> np.ndarray:
    scale = size / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale)
    canvas = np.full((size + 22, size, 3), 255, dtype=np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    cv2.putText(canvas, caption, (4, size + 16), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def outline_regions(image: np.ndarray, regions: list) -> np.ndarray:
    """Draw each ``[y, x, height, width]`` region as a yellow frame (a dot
    for a single pixel)."""
    image = np.ascontiguousarray(image)
    for y, x, height, width in regions:
        if height == 1 and width == 1:
            cv2.circle(image, (x, y), 1, (255, 220, 0), -1)
        else:
            cv2.rectangle(image, (x, y), (x + width - 1, y + height - 1),
                          (255, 220, 0), 1)
    return image


def main():
    args = parse_args()
    queried = queried_items(args.work_dir, args.round)
    try:
        config = args.config or work_dir_config(args.work_dir)
    except WorkDirError as err:
        raise SystemExit(f'error: {err}')
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = build_model(cfg)
    load_checkpoint(
        model,
        args.checkpoint or find_checkpoint(args.work_dir, queried),
        map_location='cpu',
        logger='silent')
    model.eval()
    dataset = build_pool_dataset(cfg)
    segmentation = hasattr(model, 'decode_head')
    visualizer = VISUALIZERS.build(
        dict(type='SegLocalVisualizer', name='browse_queries', alpha=0.5)
        if segmentation else dict(
            type='DetLocalVisualizer', name='browse_queries'))
    visualizer.dataset_meta = dataset.metainfo
    items = sorted(queried['items'], key=lambda r: -r.get('score', 0))
    tiles = []
    for item in track_iter_progress(items[:args.max_images]):
        data = pseudo_collate([dataset[item['index']]])
        with torch.no_grad():
            prediction = model.test_step(data)[0]
        image = mmcv.imread(prediction.img_path, channel_order='rgb')
        options = {} if segmentation else dict(
            pred_score_thr=args.score_thr)
        visualizer.add_datasample(
            'query', image, data_sample=prediction, draw_gt=False,
            show=False, **options)
        drawn = outline_regions(visualizer.get_image(),
                                item.get('regions', []))
        score = f' {item["score"]:.3f}' if 'score' in item else ''
        tiles.append(tile(drawn, args.tile, f'#{item["index"]}{score}'))
    if not tiles:
        raise SystemExit(f'round {args.round} of {args.work_dir} queried '
                         f'nothing (it is the initial set, or the pool was '
                         f'empty)')
    columns = min(4, len(tiles))
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i:i + columns])
            for i in range(0, len(tiles), columns)]
    out = args.out or osp.join(args.work_dir,
                               f'queries_round_{args.round:02d}.png')
    mmcv.imwrite(np.vstack(rows)[..., ::-1], out)
    print(f'{len(items)} images queried in round {args.round} '
          f'({queried.get("strategy", "")}); the first {len(tiles)} by '
          f'score drawn to {out}')


if __name__ == '__main__':
    main()
