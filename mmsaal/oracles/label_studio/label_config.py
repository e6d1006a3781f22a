# Copyright (c) mmsaal contributors. All rights reserved.
"""What a person sees in Label Studio: the labeling interface of a pool,
and the model's predictions as its pre-annotations (boxes, regions with
the model's classes as polygons, a class choice)."""
from typing import List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np

from mmsaal.pool import IGNORE_INDEX

QUERIED = 'queried region'


def label_config(classes: Sequence[str], segmentation: bool,
                 kind: str = 'boxes') -> str:
    """The labeling interface: boxes, polygons and the queried regions, or
    (``kind='class'``) one class an image."""
    if kind == 'class':
        choices = ''.join(f'<Choice value={quoteattr(str(c))}/>'
                          for c in classes)
        return (f'<View><Image name="image" value="$image" zoom="true"/>'
                f'<Choices name="label" toName="image" choice="single" '
                f'showInline="true">{choices}</Choices></View>')
    labels = ''.join(f'<Label value={quoteattr(str(c))}/>' for c in classes)
    if not segmentation:
        return (f'<View><Image name="image" value="$image" zoom="true"/>'
                f'<RectangleLabels name="label" toName="image">{labels}'
                f'</RectangleLabels></View>')
    return (f'<View><Image name="image" value="$image" zoom="true"/>'
            f'<PolygonLabels name="label" toName="image" strokeWidth="2">'
            f'{labels}</PolygonLabels>'
            f'<RectangleLabels name="queried" toName="image">'
            f'<Label value={quoteattr(QUERIED)} background="#FFD700"/>'
            f'</RectangleLabels></View>')


def _percent(value: float, size: int) -> float:
    return 100.0 * float(value) / size


def box_results(bboxes: np.ndarray, labels: Sequence[int],
                classes: Sequence[str], size: Tuple[int, int],
                scores: Optional[Sequence[float]] = None) -> List[dict]:
    """Label Studio rectangles of ``xyxy`` boxes on an image of ``(height,
    width)``, each with its detection score when ``scores`` are given."""
    height, width = size
    results = []
    for j, ((x1, y1, x2, y2), label) in enumerate(
            zip(np.asarray(bboxes).reshape(-1, 4), labels)):
        result = dict(
            from_name='label', to_name='image', type='rectanglelabels',
            original_width=width, original_height=height,
            value=dict(x=_percent(x1, width), y=_percent(y1, height),
                       width=_percent(x2 - x1, width),
                       height=_percent(y2 - y1, height), rotation=0,
                       rectanglelabels=[str(classes[int(label)])]))
        if scores is not None:
            result['score'] = round(float(scores[j]), 4)
        results.append(result)
    return results


def pre_annotated(scores: np.ndarray, score_thr: float, min_boxes: int,
                  score_floor: float) -> np.ndarray:
    """Which detections become pre-annotations: those scoring at least
    ``score_thr``, and at least the ``min_boxes`` best that score at least
    ``score_floor`` (a young model's boxes rarely reach ``score_thr``)."""
    scores = np.asarray(scores, np.float64)
    keep = scores >= score_thr
    best = np.argsort(-scores, kind='stable')[:min_boxes]
    keep[best[scores[best] >= score_floor]] = True
    return keep


def region_results(corners: np.ndarray, side: Union[int, Tuple[int, int]],
                   size: Tuple[int, int],
                   labels: Optional[np.ndarray] = None,
                   classes: Sequence[str] = ()) -> List[dict]:
    """The queried regions (``side`` x ``side``, or ``(height, width)``)
    as rectangles of their own, and, given the model's label map, its
    classes inside them as polygons."""
    height, width = size
    side_h, side_w = (side, side) if isinstance(side, int) else side
    results = []
    for y, x in np.asarray(corners).reshape(-1, 2).tolist():
        results.append(dict(
            from_name='queried', to_name='image', type='rectanglelabels',
            original_width=width, original_height=height,
            value=dict(x=_percent(x, width), y=_percent(y, height),
                       width=_percent(side_w, width),
                       height=_percent(side_h, height), rotation=0,
                       rectanglelabels=[QUERIED])))
        if labels is None:
            continue
        window = labels[y:y + side_h, x:x + side_w]
        for label in np.unique(window):
            if label == IGNORE_INDEX or label >= len(classes):
                continue
            mask = (window == label).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                points = contour.reshape(-1, 2)
                if len(points) < 3:
                    continue
                results.append(dict(
                    from_name='label', to_name='image',
                    type='polygonlabels', original_width=width,
                    original_height=height,
                    value=dict(points=[[_percent(px + x, width),
                                        _percent(py + y, height)]
                                       for px, py in points.tolist()],
                               closed=True,
                               polygonlabels=[str(classes[int(label)])])))
    return results
