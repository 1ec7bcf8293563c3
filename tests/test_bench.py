"""The benchmark's arithmetic (its timings belong to `make bench`, not to the tests)."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench", Path(__file__).resolve().parent.parent / "tools" / "bench.py"
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_flops_per_epoch_for_the_article_network():
    # 2N (2 * (1*64 + 64*128 + 128*36) + (64*128 + 128*36)) for N = 1000
    assert bench.flops_per_epoch() == 2 * 1000 * (2 * 12864 + 12800) == 77_056_000
    # one layer: forward and weight gradient only, no input gradient
    assert bench.flops_per_epoch(n=10, layers=(3, 5)) == 2 * 10 * 2 * 15


def test_shape_floor_does_the_epochs_matmuls():
    for n, layers in ((1000, bench.LAYERS), (7, (2, 3, 4, 5))):
        ops = bench.epoch_matmuls(n, layers)
        flops = sum(2 * left.shape[0] * left.shape[1] * right.shape[1] for left, right in ops)
        assert flops == bench.flops_per_epoch(n, layers)
        assert all(left.shape[1] == right.shape[0] for left, right in ops)


def test_the_floor_is_measured_without_the_blas_pins():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "PATH": "/bin"}
    assert bench.floor_env(env) == {"PATH": "/bin"}
    rate, info = bench.floor_rate(rounds=2, size=128, repeats=2)
    assert rate / 1e9 == pytest.approx(max(info["sgemm_gflops_rounds"]), abs=0.05)
    assert len(info["sgemm_gflops_rounds"]) == 2 and info["sgemm_gflops"] > 0
    assert info["blas"] and {"internal_api", "architecture"} <= set(info["blas"][0])
