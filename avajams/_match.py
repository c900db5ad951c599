"""The region-aware query: whole-frame and region tracks of one video, for ``Pipeline.match``.

The whole frame is sampled and embedded as for indexing. The query is also sampled once more at
a working resolution (longest side :data:`WORK_SIDE`); :func:`avajams._regions.propose_regions`
finds up to two parts of its frame worth embedding alone (a picture-in-picture window, a filmed
screen, the picture inside black bars); each is cropped from the working frames, stretched to
the sampler's output size and embedded — at every other sampled frame once the query has
:data:`HALF_RATE_FROM` frames or more, every fourth from :data:`QUARTER_RATE_FROM`, which
bounds the extra embedding to half a whole-frame pass for long queries.
The library then aligns every track with its candidates (:meth:`VideoIndex.search_tracks`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from avajams.embedding import Embedder
    from avajams.index import QueryTrack
    from avajams.sampling import Sampler

__all__ = ["HALF_RATE_FROM", "QUARTER_RATE_FROM", "WORK_SIDE", "query_tracks"]

#: longest side of the frames regions are found in and cropped from
WORK_SIDE = 640
#: region tracks use every other sampled frame once the query has this many
HALF_RATE_FROM = 6
#: ... and every fourth from this many
QUARTER_RATE_FROM = 30
#: most regions embedded besides the whole frame
MAX_REGIONS = 2


def query_tracks(
    video: str | os.PathLike[str],
    sampler: Sampler,
    embedder: Embedder,
    embed_video: Callable[
        [str | os.PathLike[str]], tuple[NDArray[np.float64], NDArray[np.float32]]
    ],
    *,
    batch_size: int = 16,
) -> list[QueryTrack]:
    """The whole-frame track of ``video`` and a track per proposed region.

    Regions need the sampler's geometry: with a sampler other than
    :class:`avajams.FrameSampler` (or one that does not stretch) only the whole frame is used.
    """
    from avajams._regions import crop_images, propose_regions
    from avajams.index import QueryTrack
    from avajams.media import VideoDecodeWarning, probe
    from avajams.sampling import FrameSampler

    times, vectors = embed_video(video)
    tracks = [QueryTrack(vectors, times)]
    if not isinstance(sampler, FrameSampler) or sampler.fit != "stretch":
        return tracks
    info = probe(video)
    scale = WORK_SIDE / max(info.width, info.height, 1)
    if scale >= 1:
        work_size = (info.width - info.width % 2, info.height - info.height % 2)
    else:
        work_size = (
            max(2, round(info.width * scale / 2) * 2),
            max(2, round(info.height * scale / 2) * 2),
        )
    worker = FrameSampler.from_settings(sampler.settings(), size=work_size, threads=sampler.threads)
    with warnings.catch_warnings():  # a damaged file was already reported by the first pass
        warnings.simplefilter("ignore", VideoDecodeWarning)
        work = worker.sample(video)
    if len(work) == 0:
        return tracks
    out_size = sampler.size or embedder.input_size or (299, 299)
    stride = 4 if len(work) >= QUARTER_RATE_FROM else 2 if len(work) >= HALF_RATE_FROM else 1
    keep = np.arange(len(work))[::stride]
    for region in propose_regions(work.images, limit=MAX_REGIONS):
        crops = crop_images(work.images[keep], region.box, out_size)
        vecs = np.concatenate(
            [embedder.embed(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]
        )
        tracks.append(QueryTrack(vecs, work.times[keep], region.box))
    return tracks
