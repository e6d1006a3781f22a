# Copyright (c) mmsaal contributors. All rights reserved.
"""Pool images checked before any training: a missing file, one that is no
image, or one too large to decode is named by its path, with the fix,
instead of failing inside a data loader worker rounds later."""
import os.path as osp
from typing import List, Sequence, Tuple

from .errors import DataError

#: Images are refused past this many pixels (PIL's own bomb limit is
#: twice its ``MAX_IMAGE_PIXELS``, 179 million pixels).
MAX_PIXELS = 2 * 89_478_485


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of the image ``path`` from its header.

    Raises:
        DataError: It is missing, is not an image PIL can read, or has more
            than :data:`MAX_PIXELS` pixels.
    """
    from PIL import Image
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(_missing([path])) from None
    except Image.DecompressionBombError:
        raise DataError(
            f'the pool image {path} has more pixels than mmsaal decodes '
            f'({MAX_PIXELS:,}): scale it down, or remove it from the '
            f'dataset.') from None
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(
            f'the pool image {path} cannot be read as an image ({err}): '
            f'replace it, or remove it from the dataset.') from None
    if width * height > MAX_PIXELS:
        raise DataError(
            f'the pool image {path} is {width}x{height}, more pixels than '
            f'mmsaal decodes ({MAX_PIXELS:,}): scale it down, or remove it '
            f'from the dataset.')
    return width, height


def image_sizes(paths: Sequence[str],
                threads: int = 8) -> List[Tuple[int, int]]:
    """:func:`image_size` of every path, headers read in ``threads``
    threads (about 0.1 ms an image); the first failure in the paths' order
    is raised."""
    if len(paths) < 16:
        return [image_size(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(image_size, paths, chunksize=256))


def check_images(paths: Sequence[str], headers: bool = False) -> None:
    """Every path is a file (one ``stat`` each) and, with ``headers``, an
    image of at most :data:`MAX_PIXELS` pixels (:func:`image_sizes`).

    Raises:
        DataError: Naming the missing or unreadable images.
    """
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise DataError(_missing(missing))
    if headers:
        image_sizes(paths)


def _missing(paths: List[str]) -> str:
    more = f' (and {len(paths) - 3} more)' if len(paths) > 3 else ''
    return (f'the pool image {", ".join(paths[:3])}{more} does not exist: '
            f'restore it, or remove it from the dataset (its annotation '
            f'file or image list) and start a new run.')
