# Copyright (c) mmsaal contributors. All rights reserved.
import contextlib
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch

from mmsaal.selection import kmeans_pp_seeding, top_k


class BasePoolSampler:
    """An acquisition strategy: scores pool items and picks the query.

    Subclasses implement :meth:`score_batch` (whole items) and/or
    :meth:`score_maps` (pixels); a round runs them over the candidates
    (batched, sharded over ranks, inside :meth:`scoring`), then calls
    :meth:`select` on the scores of the candidate units: whole items, or
    the ranked regions or pixels of images. A higher score means "label
    this first".

    Args:
        diversity (bool): Pick by k-means++ seeding over the scores instead
            of top-k (SAAL's ``*_Diversity`` modes). Defaults to False.
    """

    #: Whether scoring runs the model over the candidates.
    needs_model = True

    def __init__(self, diversity: bool = False) -> None:
        self.diversity = diversity

    @contextlib.contextmanager
    def scoring(self, model: torch.nn.Module) -> Iterator[None]:
        """The block in which a round scores with ``model``: set up what
        every batch shares (e.g. SAAL's task adapter) once here."""
        yield

    def score_batch(self, model: torch.nn.Module,
                    data_batch: dict) -> Sequence[float]:
        """Score one collated batch of pool items.

        Args:
            model (nn.Module): The unwrapped model, in eval mode.
            data_batch (dict): As the pool dataloader yields it.

        Returns:
            Sequence[float]: One score per item of the batch.
        """
        raise NotImplementedError

    def score_maps(self, model: torch.nn.Module,
                   data_batch: dict) -> List[torch.Tensor]:
        """Score every pixel of a batch of images (segmentation pools).

        Region and pixel queries (``ActiveLearningHook.granularity``) rank
        their units on these maps; a higher value means "label this pixel
        first".

        Args:
            model (nn.Module): The unwrapped segmentor, in eval mode.
            data_batch (dict): As the pool dataloader yields it.

        Returns:
            list[Tensor]: One ``(H, W)`` map per image, at the image's
            original (label) size.
        """
        raise NotImplementedError(
            f'{type(self).__name__} scores whole items only: use '
            f"granularity='image', or a sampler that scores pixels "
            f'(SAALSampler, EntropySampler, RIPUSampler, RandomSampler)')

    def select(self, scores: Optional[np.ndarray], num_candidates: int,
               budget: int, rng: np.random.Generator) -> np.ndarray:
        """Pick ``budget`` candidates (items, or units of items).

        Args:
            scores (np.ndarray, optional): One score per candidate, or None
                for item queries when :attr:`needs_model` is False.
            num_candidates (int): How many candidates there are.
            budget (int): How many to pick.
            rng (np.random.Generator): The round's generator.

        Returns:
            np.ndarray: Positions into the candidates.
        """
        if self.diversity:
            return kmeans_pp_seeding(scores, budget, rng)
        return top_k(scores, budget)

    def __repr__(self) -> str:
        fields = ', '.join(f'{k}={v!r}' for k, v in vars(self).items()
                           if not k.startswith('_'))
        return f'{type(self).__name__}({fields})'
