# Copyright (c) mmsaal contributors. All rights reserved.
import torch
import torch.nn.functional as F

from mmsaal.registry import POOL_SAMPLERS
from .uncertainty import (PredictionSampler, class_probabilities,
                          softmax_entropy)


def region_impurity(labels: torch.Tensor, num_classes: int,
                    radius: int = 1) -> torch.Tensor:
    """RIPU's region impurity: for each pixel, the entropy of the histogram
    of ``labels`` ``(H, W)`` over its ``(2 * radius + 1)``-square
    neighbourhood (Xie et al., CVPR 2022, Eq. 2-3).

    Returns:
        Tensor: ``(H, W)`` impurities, 0 where the neighbourhood is of one
        class, ln(n) where it holds n classes equally.
    """
    size = 2 * radius + 1
    one_hot = F.one_hot(labels.long(), num_classes).permute(2, 0, 1)
    # count_include_pad=False: border pixels average over their real
    # neighbours only.
    histogram = F.avg_pool2d(
        one_hot.float()[None], size, stride=1, padding=radius,
        count_include_pad=False)[0]
    return softmax_entropy(histogram)


def region_impurity_uncertainty(probs: torch.Tensor,
                                radius: int = 1) -> torch.Tensor:
    """RIPU's pixel score: region impurity times prediction uncertainty.

    For each pixel, over its ``(2 * radius + 1)``-square neighbourhood:
    impurity is the entropy of the histogram of predicted classes
    (:func:`region_impurity`), and uncertainty the mean entropy of the
    predicted distributions (Xie et al., "Towards Fewer Annotations: Active
    Learning via Region Impurity and Prediction Uncertainty for Domain
    Adaptive Semantic Segmentation", CVPR 2022, Eq. 2-4).

    Args:
        probs (Tensor): ``(C, H, W)`` class probabilities.
        radius (int): Neighbourhood radius. Defaults to 1.

    Returns:
        Tensor: ``(H, W)`` scores.
    """
    size = 2 * radius + 1
    impurity = region_impurity(probs.argmax(dim=0), probs.shape[0], radius)
    uncertainty = F.avg_pool2d(
        softmax_entropy(probs)[None, None], size, stride=1, padding=radius,
        count_include_pad=False)[0, 0]
    return impurity * uncertainty


@POOL_SAMPLERS.register_module()
class RIPUSampler(PredictionSampler):
    """RIPU (CVPR 2022): region impurity x prediction uncertainty.

    The published state of the art of region- and pixel-based active
    domain adaptation, here as a baseline beside SAAL: it scores pixels
    (:func:`region_impurity_uncertainty`), which ``ActiveLearningHook``
    pools into regions or ranks directly, as for every sampler.

    Args:
        radius (int): Radius of the neighbourhood. Defaults to 1 (RIPU's
            3x3).
        diversity (bool): See :class:`BasePoolSampler`. Defaults to False.
    """

    def __init__(self, radius: int = 1, diversity: bool = False) -> None:
        super().__init__(diversity=diversity)
        if not isinstance(radius, int) or radius < 1:
            raise ValueError(f'RIPUSampler.radius must be an int >= 1, got '
                             f'{radius!r}')
        self.radius = radius

    def pixel_scores(self, prediction) -> torch.Tensor:
        return region_impurity_uncertainty(
            class_probabilities(prediction), self.radius)
