# Copyright (c) mmsaal contributors. All rights reserved.
"""Which pool items are labeled, and since which round."""
import hashlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .revealed import Reveal, RevealedPixels

UNLABELED = -1


def fingerprint(item_names: Sequence[str]) -> str:
    """A short digest of the pool's item names, in order.

    It ties a saved state to the dataset it indexes, so a resume on another
    dataset (other length, files or order) is refused.
    """
    digest = hashlib.sha1()
    for name in item_names:
        digest.update(name.encode('utf-8'))
        digest.update(b'\0')
    return digest.hexdigest()[:16]


class PoolState:
    """The labeled / unlabeled split of a pool of ``pool_size`` items.

    ``labeled_round[i]`` is the round at which item ``i`` was labeled
    (0 for the initial set) or ``-1`` while it is unlabeled, as baal's
    ``labelled_map``. Labeled and unlabeled are disjoint and complete by
    construction, and an item is never labeled twice.

    When the pool is labeled pixel by pixel (region and pixel queries), the
    state also holds the :class:`~mmsaal.pool.RevealedPixels`, and an item
    counts as labeled from the round that revealed its first pixel: both
    change together in :meth:`reveal_round`, so they never disagree.

    Args:
        item_names (Sequence[str]): A name per pool item (its image path,
            relative to the data root), in dataset order.
        seed (int): The seed of the experiment's draws. Defaults to 0.
        pixels (bool): Whether items are labeled pixel by pixel. Defaults
            to False.
    """

    def __init__(self,
                 item_names: Sequence[str],
                 seed: int = 0,
                 pixels: bool = False) -> None:
        self.item_names = list(item_names)
        self.fingerprint = fingerprint(self.item_names)
        self.seed = int(seed)
        self.labeled_round = np.full(
            len(self.item_names), UNLABELED, dtype=np.int64)
        self.round = -1
        self.revealed = RevealedPixels() if pixels else None

    @property
    def pool_size(self) -> int:
        return len(self.item_names)

    @property
    def num_labeled(self) -> int:
        return int((self.labeled_round != UNLABELED).sum())

    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled_round != UNLABELED)

    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.labeled_round == UNLABELED)

    def queried_in(self, round_idx: int) -> np.ndarray:
        return np.flatnonzero(self.labeled_round == round_idx)

    def round_rng(self, round_idx: int) -> np.random.Generator:
        """The generator of a round's draws: the same on every rank and on
        every resume of that round."""
        return np.random.default_rng([self.seed, round_idx])

    def tie_seed(self, round_idx: int) -> int:
        """The seed of a round's order among equal scores
        (:func:`mmsaal.selection.tie_keys`): the same on every rank and on
        every resume of that round, and a stream of its own, so the round's
        draws (:meth:`round_rng`) are what they would be without ties."""
        return int(np.random.SeedSequence(
            [self.seed, round_idx, 1]).generate_state(1, np.uint64)[0])

    def add_round(self, indices: Iterable[int]) -> int:
        """Label ``indices`` as the next round.

        Args:
            indices (Iterable[int]): Pool positions, all unlabeled.

        Returns:
            int: The new round's number.
        """
        indices = np.asarray(list(indices), dtype=np.int64)
        if len(np.unique(indices)) != len(indices):
            raise ValueError('a round cannot label the same item twice')
        if len(indices) and (indices.min() < 0
                             or indices.max() >= self.pool_size):
            raise IndexError(f'pool positions must lie in '
                             f'[0, {self.pool_size}), got {indices}')
        already = indices[self.labeled_round[indices] != UNLABELED]
        if len(already):
            raise ValueError(f'items {already[:10].tolist()} are already '
                             f'labeled; a query must come from the pool')
        self.round += 1
        self.labeled_round[indices] = self.round
        return self.round

    def reveal_round(self, reveals: Iterable[Tuple[int, Reveal]]) -> int:
        """Reveal pixels as the next round (pixel-labeled pools).

        Args:
            reveals (Iterable[tuple[int, Reveal]]): ``(pool position,
                reveal)`` (a :class:`~mmsaal.pool.Reveal` or a bool mask)
                of the pixels to reveal, none revealed before.

        Returns:
            int: Pixels revealed. The images revealed for the first time
            are labeled in the new round.
        """
        if self.revealed is None:
            raise RuntimeError('this pool is labeled item by item; '
                               'reveal_round is for pixel-labeled pools')
        touched, revealed = set(), 0
        for index, reveal in reveals:
            revealed += self.revealed.reveal(index, reveal, self.round + 1)
            touched.add(int(index))
        touched = np.asarray(sorted(touched), dtype=np.int64)
        self.add_round(touched[self.labeled_round[touched] == UNLABELED])
        return revealed

    def check_revealed(self, where: str) -> None:
        """The images with revealed pixels must be the labeled ones (after
        a replay of the round files)."""
        if self.revealed is not None and (self.revealed.indices !=
                                          self.labeled_indices().tolist()):
            raise RuntimeError(
                f'the revealed masks in {where} cover other images than the '
                f'labeled set of round {self.round}: the round folders were '
                f'edited by hand. Restore them.')

    def state_dict(self) -> Dict:
        """Plain-python state (JSON- and ``weights_only``-safe)."""
        return dict(
            round=self.round,
            seed=self.seed,
            pool_size=self.pool_size,
            fingerprint=self.fingerprint,
            labeled_round=self.labeled_round.tolist())

    def load_state_dict(self, state: Dict) -> None:
        """Restore :meth:`state_dict`, checking it indexes this pool."""
        if state['pool_size'] != self.pool_size:
            raise ValueError(
                f'the saved pool state has {state["pool_size"]} items but '
                f'the dataset has {self.pool_size}: it was made for another '
                f'dataset. Point --work-dir to a new folder, or restore the '
                f'dataset the run started with.')
        if state['fingerprint'] != self.fingerprint:
            raise ValueError(
                'the saved pool state indexes other files than the dataset '
                '(its fingerprint differs): the dataset changed since the '
                'run started. Restore it, or point --work-dir to a new '
                'folder.')
        labeled_round = np.asarray(state['labeled_round'], dtype=np.int64)
        # A round may label no new item (region queries of images labeled
        # before, an empty initial set beside a labeled source domain), so
        # only a label from a later round is inconsistent.
        if labeled_round.shape != (self.pool_size, ) or (
                labeled_round.max(initial=UNLABELED) > state['round']):
            raise ValueError('the saved pool state is inconsistent: '
                             '`labeled_round` does not match `round`')
        self.seed = int(state['seed'])
        self.round = int(state['round'])
        self.labeled_round = labeled_round

    def differences(self, saved: Dict) -> List[str]:
        """How a pool state saved at some round (a checkpoint's) differs
        from this one's rounds up to it: other dataset, seed, labeled set
        or revealed pixels. Empty when it is this run's."""
        found = []
        if saved.get('pool_size') != self.pool_size or saved.get(
                'fingerprint') != self.fingerprint:
            found.append('it indexes another dataset (its pool fingerprint '
                         'differs)')
            return found
        if saved.get('seed') != self.seed:
            found.append(f'its seed is {saved.get("seed")}, not {self.seed}')
        round_idx = int(saved.get('round', -1))
        if round_idx > self.round:
            found.append(f'it was saved at round {round_idx}, and the round '
                         f'folders end at round {self.round}')
            return found
        expected = np.where(self.labeled_round <= round_idx,
                            self.labeled_round, UNLABELED)
        labeled = np.asarray(saved.get('labeled_round', ()), np.int64)
        if labeled.shape != expected.shape or (labeled != expected).any():
            theirs = int((labeled != UNLABELED).sum()) if \
                labeled.shape == expected.shape else '?'
            found.append(
                f'its labeled set ({theirs} items at round {round_idx}) is '
                f'not the {int((expected != UNLABELED).sum())} items the '
                f'round folders label up to round {round_idx}')
        if self.revealed is not None and 'revealed' in saved and saved[
                'revealed'] != self.revealed.digest(round_idx):
            found.append(f'its revealed pixels differ from those of the '
                         f'round folders up to round {round_idx}')
        return found

    def summary(self) -> List[Dict]:
        """One row per round: how many items it labeled and the total."""
        rows, total = [], 0
        for round_idx in range(self.round + 1):
            added = int((self.labeled_round == round_idx).sum())
            total += added
            rows.append(dict(round=round_idx, added=added, labeled=total))
        return rows


def draw_initial_set(pool_size: int, size: int,
                     rng: np.random.Generator,
                     candidates: Optional[np.ndarray] = None) -> np.ndarray:
    """Draw ``size`` distinct pool positions uniformly at random."""
    candidates = np.arange(pool_size) if candidates is None else candidates
    return np.sort(rng.choice(candidates, size=size, replace=False))
