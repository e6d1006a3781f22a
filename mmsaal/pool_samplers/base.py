# Copyright (c) mmsaal contributors. All rights reserved.
import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmsaal.selection import kmeans_pp_seeding, top_k

#: The values of ``diversity`` (see :class:`BasePoolSampler`).
DIVERSITIES = (False, True, 'classes')


class BasePoolSampler:
    """An acquisition strategy: scores pool items and picks the query.

    Subclasses implement :meth:`score_batch` (whole items) and/or
    :meth:`score_maps` (pixels); a round runs them over the candidates
    (batched, sharded over ranks, inside :meth:`scoring`), then calls
    :meth:`select` on the scores of the candidate units: whole items, or
    the ranked regions or pixels of images. A higher score means "label
    this first".

    Args:
        diversity (bool | str): How :meth:`select` picks among the scored
            candidates. False: the top scores. True: k-means++ seeding over
            the scores (SAAL's ``*_Diversity`` modes). ``'classes'``:
            k-means++ seeding over each unit's histogram of predicted
            classes times its score, so a round's regions (or pixels) of
            one image spread over what the model sees there; region and
            pixel queries only. Defaults to False.
    """

    #: Whether scoring runs the model over the candidates.
    needs_model = True

    def __init__(self, diversity: Union[bool, str] = False) -> None:
        if diversity not in DIVERSITIES or not isinstance(
                diversity, (bool, str)):
            raise ValueError(
                f'{type(self).__name__}.diversity must be one of '
                f'{DIVERSITIES}, got {diversity!r}')
        self.diversity = diversity

    def check_granularity(self, granularity: str) -> None:
        """Refuse, before any training, a query granularity this sampler's
        fields cannot serve (``ActiveLearningHook`` calls it)."""
        if granularity == 'image' and self.diversity == 'classes':
            raise ValueError(
                f"{type(self).__name__}(diversity='classes') spreads a "
                f"round's regions or pixels over predicted classes, and "
                f"ActiveLearningHook.granularity='image' queries whole "
                f"images: use diversity=True (k-means++ over the scores) "
                f"for images")

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

    def labeled_score_maps(
            self, model: torch.nn.Module,
            data_batch: dict) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`score_maps` with each image's predicted classes, an
        ``(H, W)`` int64 map at the same size (for ``diversity='classes'``).
        """
        raise NotImplementedError(
            f"{type(self).__name__} predicts no classes, which "
            f"diversity='classes' needs: use diversity=True, or a sampler "
            f'that predicts (SAALSampler, EntropySampler, '
            f'LeastConfidenceSampler, RIPUSampler)')

    def select(self,
               scores: Optional[np.ndarray],
               num_candidates: int,
               budget: int,
               rng: np.random.Generator,
               classes: Optional[np.ndarray] = None) -> np.ndarray:
        """Pick ``budget`` candidates (items, or units of items).

        Args:
            scores (np.ndarray, optional): One score per candidate, or None
                for item queries when :attr:`needs_model` is False.
            num_candidates (int): How many candidates there are.
            budget (int): How many to pick.
            rng (np.random.Generator): The round's generator.
            classes (np.ndarray, optional): ``(N, C)``, each candidate
                unit's share of pixels per predicted class; needed by
                ``diversity='classes'``.

        Returns:
            np.ndarray: Positions into the candidates.
        """
        if self.diversity == 'classes':
            if classes is None:
                raise ValueError(
                    f"{type(self).__name__}(diversity='classes') picks "
                    f'regions or pixels by their predicted classes; whole '
                    f'items have none here: use diversity=True')
            return kmeans_pp_seeding(score_weighted(classes, scores), budget,
                                     rng)
        if self.diversity:
            return kmeans_pp_seeding(scores, budget, rng)
        return top_k(scores, budget)

    def __repr__(self) -> str:
        fields = ', '.join(f'{k}={v!r}' for k, v in vars(self).items()
                           if not k.startswith('_'))
        return f'{type(self).__name__}({fields})'


def score_weighted(classes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each unit's class shares times its score (shifted to start at 0 when
    scores go negative, as ``score='diff'`` can): k-means++ then starts at
    the best unit and draws the next ones far from the picks either in
    what they show or in how high they score."""
    scores = np.asarray(scores, dtype=np.float64)
    weights = scores - min(0.0, float(scores.min())) if len(scores) else \
        scores
    return np.asarray(classes, dtype=np.float64) * weights[:, None]
