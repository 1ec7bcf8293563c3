"""The benchmark's arithmetic (its timings belong to `make bench`, not to the tests)."""

from mdn_tf import bench


def test_flops_per_epoch_for_the_article_network():
    # 2N (2 * (1*64 + 64*128 + 128*36) + (64*128 + 128*36)) for N = 1000
    assert bench.flops_per_epoch() == 2 * 1000 * (2 * 12864 + 12800) == 77_056_000
    # one layer: forward and weight gradient only, no input gradient
    assert bench.flops_per_epoch(n=10, layers=(3, 5)) == 2 * 10 * 2 * 15
