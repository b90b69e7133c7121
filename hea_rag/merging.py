"""When an `index` run also merges segments, so that adding papers a few at a time does not leave
hundreds of segments for every search to visit.

After a run has added its segment, the newest segments are merged into one while the next older
segment is at most `RATIO` times the size of those newer than it together (in passages), and the
merge stays within `MOST_PASSAGES`. Each segment is then more than twice all newer ones together
(like the digits of a counter): a corpus added one paper at a time keeps about log3(passages)
segments (10 at most over 20,000 one-passage runs), each passage is rewritten about that many
times over its life, and no run rewrites more than `MOST_PASSAGES` passages. Segments that
big stay as they are until `hea-rag index --compact` merges everything.
"""

from __future__ import annotations

from collections.abc import Iterable

RATIO = 2
MOST_PASSAGES = 50_000


def newest_to_merge(sizes_newest_first: Iterable[int], ratio: int = RATIO,
                    most: int = MOST_PASSAGES) -> int:
    """How many of the newest segments to merge into one (0: leave them), given their passage
    counts newest first (read lazily: only the segments it needs)."""
    sizes = iter(sizes_newest_first)
    total, count = next(sizes, 0), 1
    for size in sizes:
        if size > ratio * total or total + size > most:
            break
        total, count = total + size, count + 1
    return count if count > 1 else 0
