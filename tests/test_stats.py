"""benchmarks.stats against numbers computed by hand and against numpy's own statistics."""

import math

import numpy as np
import pytest

from benchmarks.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap, stderr_mean


def test_mcnemar_exact_by_hand():
    # Binomial(5, 1/2): P(X <= 0) = 1/32, two-sided 2/32
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)
    # Binomial(10, 1/2): P(X <= 2) = (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_stderr_matches_numpy_and_hand():
    assert stderr_mean([1, 0, 1, 1]) == pytest.approx(0.25)
    vals = [0.1, 0.7, 0.3, 0.9, 0.4]
    assert stderr_mean(vals) == pytest.approx(np.std(vals, ddof=1) / math.sqrt(len(vals)))
    assert stderr_mean([1.0]) is None


def test_bootstrap_is_seeded_and_covers_the_mean():
    vals = [1] * 70 + [0] * 30
    lo, hi = bootstrap_ci(vals)
    assert (lo, hi) == bootstrap_ci(vals)
    assert lo < 0.7 < hi
    # normal approximation: 0.7 +- 1.96 * stderr, the percentile interval lies close to it
    se = stderr_mean(vals)
    assert lo == pytest.approx(0.7 - 1.96 * se, abs=0.03)
    assert hi == pytest.approx(0.7 + 1.96 * se, abs=0.03)
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)


def test_paired_bootstrap_sees_a_real_difference_and_no_difference():
    a = [0] * 50 + [1] * 50
    b = [1] * 90 + [0] * 10
    r = paired_bootstrap(a, b)
    assert r["delta"] == pytest.approx(0.4)
    assert r["low"] > 0 and r["p_value"] < 0.01
    same = paired_bootstrap(a, a)
    assert same["delta"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap([1], [1, 0])
