# Copyright (c) mmsaal contributors. All rights reserved.
"""A head's forward for several images at once, each image under its own
weights: the shape the perturbed pass has (every image has its own ascent
step), batched so that a GPU runs one kernel for all images instead of one
per image.

``torch.func.vmap`` over ``functional_call`` turns the per-image weights
into batched matrix products for linear layers (the RoI head's FCs) and
into grouped convolutions for convolutions (the dense heads), with no
change to the head's code. It is exact: the same products, per image
(``tests/test_adapters/test_batched_heads.py`` checks it against the loop).

Not wired into scoring: :func:`~mmsaal.sharpness.perturbed_loss` takes one
image's gradient, steps and evaluates before the next image, so batching
the perturbed pass means holding every image's perturbed weights at once
(the head's size times the batch). ``tools/misc/batched_heads.py`` measures
what batching would gain.
"""
from typing import Dict, Sequence

import torch
from torch.func import functional_call, vmap


def stacked_weights(module: torch.nn.Module,
                    steps: Sequence[Dict[str, torch.Tensor]]
                    ) -> Dict[str, torch.Tensor]:
    """``module``'s parameters moved by each image's step, stacked along a
    new first dimension (one entry per image); parameters a step does not
    name stay as they are for that image."""
    params = dict(module.named_parameters())
    return {
        name: torch.stack([p.detach() + step[name] if name in step
                           else p.detach() for step in steps])
        for name, p in params.items()
    }


def batched_forward(module: torch.nn.Module,
                    weights: Dict[str, torch.Tensor], *inputs):
    """``module(*inputs[i])`` under ``weights[:][i]`` for every image ``i``
    at once.

    Args:
        module (nn.Module): The head; its buffers are shared by the images.
        weights (dict[str, Tensor]): From :func:`stacked_weights`.
        *inputs: Each image's inputs stacked along a new first dimension
            (tensors, or tuples of them such as a neck's levels).

    Returns:
        The module's outputs, stacked along a new first dimension.
    """
    def one_image(image_weights, *image_inputs):
        return functional_call(module, image_weights, image_inputs)

    return vmap(one_image)(weights, *inputs)
