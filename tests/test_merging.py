"""The merge policy of `index` runs (hea_rag.merging): few segments, bounded merges."""

from __future__ import annotations

import math
import random

from hea_rag.merging import MOST_PASSAGES, newest_to_merge


def run(additions) -> tuple[list[int], int, int]:
    """Segment sizes after each addition is committed and merged as `index` does; the most
    segments ever live, the biggest merge."""
    segments, most, biggest = [], 0, 0
    for size in additions:
        segments.append(size)
        count = newest_to_merge(reversed(segments))
        if count:
            segments[-count:] = [sum(segments[-count:])]
            biggest = max(biggest, segments[-1])
        most = max(most, len(segments))
    return segments, most, biggest


def test_one_paper_runs_keep_a_logarithmic_number_of_segments():
    segments, most, biggest = run([1] * 20_000)
    assert sum(segments) == 20_000
    assert most <= math.log(20_000, 3) + 2 and biggest <= MOST_PASSAGES
    older_first = list(segments)
    assert all(a > 2 * sum(older_first[i + 1:]) for i, a in enumerate(older_first[:-1]))


def test_no_merge_rewrites_more_than_the_bound_and_big_segments_are_left_alone():
    rng = random.Random(3)
    segments, _, biggest = run(rng.choice([1, 2, 5, 40, 300, 4000]) for _ in range(5000))
    assert biggest <= MOST_PASSAGES
    assert newest_to_merge([10, 1_000_000]) == 0  # a new run beside a big index: nothing merged
    assert newest_to_merge([30_000, 30_000]) == 0  # together over the bound


def test_sizes_are_read_only_as_far_as_needed():
    read = []

    def sizes():
        for size in (3, 4, 20, 100, 5):
            read.append(size)
            yield size

    assert newest_to_merge(sizes()) == 2  # 4 <= 2 x 3; 20 > 2 x 7
    assert read == [3, 4, 20]
    assert newest_to_merge([]) == 0 and newest_to_merge([5]) == 0
