"""Uncertainty for benchmark metrics: one module, so ``summary.json``, ``verif compare`` and the HTML report
give the same numbers.

- :func:`stderr_mean`: the standard error of a mean, as lm-evaluation-harness reports it
  (sample standard deviation with ``ddof=1`` over ``sqrt(n)``).
- :func:`bootstrap_ci`: a seeded percentile bootstrap interval of a mean (the Multi-IF authors report
  bootstrap intervals); the same seed and values give the same interval on every machine.
- :func:`mcnemar_exact`: the exact (binomial) two-sided McNemar test for two runs on the same samples, from
  the discordant counts only (``b``: passed in A, failed in B; ``c``: the reverse).
- :func:`paired_bootstrap`: a seeded paired bootstrap of the difference of two means over the same samples,
  for metrics that are not one pass/fail per sample.

Everything here is pure Python (``math`` and ``random``), so importing it costs nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

#: the seed every interval uses unless told otherwise: intervals are part of a run's recorded output
SEED = 1234
#: bootstrap resamples: enough for a stable 95% interval of a mean over a few hundred samples
RESAMPLES = 1000


def stderr_mean(values: Sequence[float]) -> float | None:
    """Standard error of the mean (``ddof=1``); None with fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = RESAMPLES,
                 seed: int = SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values``; None when there are no values."""
    n = len(values)
    if n == 0:
        return None
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = random.Random(seed)
    vals = list(values)
    means = sorted(math.fsum(rng.choices(vals, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    return _percentile(means, alpha), _percentile(means, 1 - alpha)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts ``b`` and ``c``.

    Under the null each discordant pair is A-better or B-better with probability 1/2, so the p-value is
    ``min(1, 2 * P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)``; 1.0 when there are no discordant pairs.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = math.fsum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                     resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, float] | None:
    """Paired bootstrap of ``mean(b) - mean(a)`` over the same samples (``a[i]`` and ``b[i]`` are one sample).

    Returns ``{"delta", "low", "high", "p_value"}``, the p-value two-sided: twice the smaller share of resampled
    differences on either side of 0 (capped at 1). None when there are no pairs.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values must have the same length, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return None
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    delta = math.fsum(diffs) / n
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    below = sum(1 for m in means if m <= 0) / resamples
    above = sum(1 for m in means if m >= 0) / resamples
    return {"delta": delta, "low": _percentile(means, alpha), "high": _percentile(means, 1 - alpha),
            "p_value": min(1.0, 2 * min(below, above))}


def ratio_stderr(sums: Sequence[float], counts: Sequence[float]) -> float | None:
    """Standard error of a pooled ratio ``sum(sums) / sum(counts)`` whose units (samples) are independent but
    each contributes ``counts[i]`` values summing to ``sums[i]`` (e.g. a prompt's instructions).

    The usual cluster (linearised) estimator ``sqrt(n / (n - 1) * sum((s_i - r * c_i) ** 2)) / sum(c)``: with one
    value per unit it is exactly :func:`stderr_mean`. None with fewer than two units or no values.
    """
    n = len(sums)
    if n != len(counts):
        raise ValueError(f"sums and counts must have the same length, got {n} and {len(counts)}")
    total = math.fsum(counts)
    if n < 2 or total == 0:
        return None
    r = math.fsum(sums) / total
    ss = math.fsum((s - r * c) ** 2 for s, c in zip(sums, counts, strict=True))
    return math.sqrt(n / (n - 1) * ss) / total


def cluster_bootstrap_ci(sums: Sequence[float], counts: Sequence[float], *, level: float = 0.95,
                         resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float] | None:
    """Seeded percentile bootstrap interval of a pooled ratio, resampling whole units (samples), so that the
    instructions of one prompt move together; with one value per unit it is a bootstrap of the mean.

    numpy's PCG64 generator (same seed, same interval on every machine), imported here only: intervals over
    thousands of samples and hundreds of metrics would take minutes in pure Python. None with no values.
    """
    import numpy as np

    n = len(sums)
    if n != len(counts):
        raise ValueError(f"sums and counts must have the same length, got {n} and {len(counts)}")
    if n == 0 or math.fsum(counts) == 0:
        return None
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    s, c = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, resamples, 100):  # bounded memory: 100 resamples x n indices at a time
        idx = rng.integers(0, n, size=(min(100, resamples - start), n))
        num, den = s[idx].sum(axis=1), c[idx].sum(axis=1)
        ratios.append(np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0))
    r = np.concatenate(ratios)
    r = np.sort(r[~np.isnan(r)])
    alpha = (1 - level) / 2
    return _percentile(r.tolist(), alpha), _percentile(r.tolist(), 1 - alpha)
