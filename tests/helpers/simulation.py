"""Simulated studies for calibrating accuracy comparisons (tests and `make bench`): per-image log-odds
    logit[m,s,i] = mu_m + b_i + u_{m,i} + c_{m,s}
b_i ~ N(0, 8^2) shared image difficulty, u_{m,i} ~ N(0, 6^2) architecture-
specific image effect fixed across seeds, c_{m,s} ~ N(0, 0.35^2) per-seed shift
(about 1 accuracy point), then one Bernoulli draw per run and image.  With
mu = 8 accuracy is ~79 %, equal-accuracy models disagree on ~20 % of images,
two seeds of one model on ~6 %.  b and u are drawn fresh per study: "equal
accuracy" is a population statement, so the test-set-specific difference
between two architectures is part of the null variation.
"""

import functools

import numpy as np
from scipy import optimize, special, stats

from cnnstudy.analysis.stats import compare_accuracy

SD_IMAGE, SD_MODEL_IMAGE, SD_SEED, MU_B = 8.0, 6.0, 0.35, 8.0


def _population_accuracy(mu, seed_sd=SD_SEED):
    x, w = np.polynomial.hermite_e.hermegauss(120)
    sd = np.sqrt(SD_IMAGE**2 + SD_MODEL_IMAGE**2 + seed_sd**2)
    return float((w * special.expit(mu + sd * x)).sum() / w.sum())


def _mu_for(accuracy, seed_sd=SD_SEED):
    return optimize.brentq(lambda m: _population_accuracy(m, seed_sd) - accuracy, -20, 20)


def simulate_studies(rng, n_studies, n_seeds, n_images, true_difference, seed_sd=SD_SEED):
    """Return (correct_a, correct_b), bool arrays (n_studies, n_seeds, n_images).

    Population accuracy of A exceeds B's by `true_difference` (a fraction).
    """
    mu_a = _mu_for(_population_accuracy(MU_B, seed_sd) + true_difference, seed_sd)
    out = np.empty((2, n_studies, n_seeds, n_images), dtype=bool)
    for lo in range(0, n_studies, 100):  # chunks keep float32 temporaries ~30 MB
        k = min(100, n_studies - lo)
        b = rng.standard_normal((1, k, 1, n_images), dtype=np.float32) * SD_IMAGE
        u = rng.standard_normal((2, k, 1, n_images), dtype=np.float32) * SD_MODEL_IMAGE
        c = rng.standard_normal((2, k, n_seeds, 1), dtype=np.float32) * seed_sd
        mu = np.array([mu_a, MU_B], dtype=np.float32).reshape(2, 1, 1, 1)
        p = special.expit(mu + b + u + c)
        out[:, lo : lo + k] = rng.random(p.shape, dtype=np.float32) < p
    return out[0], out[1]


def _old_t_across_seeds(correct_a, correct_b):
    """The method being replaced: one-sample t over per-seed accuracy differences."""
    diff = correct_a.mean(axis=1) - correct_b.mean(axis=1)  # seeds paired by index
    return stats.ttest_1samp(diff, 0.0).pvalue


def _rates(a, b, alpha):
    new = np.mean([compare_accuracy(x, y)["p_value"] < alpha for x, y in zip(a, b, strict=True)])
    old = (
        np.nan
        if a.shape[1] < 2
        else np.mean([_old_t_across_seeds(x, y) < alpha for x, y in zip(a, b, strict=True)])
    )
    return float(new), float(old)


@functools.cache
def false_positive_and_power(
    n_seeds,
    n_studies=1000,
    n_images=4000,
    true_difference=0.03,
    alpha=0.05,
    seed_sd=SD_SEED,
    rng_seed=20240611,
):
    """Rejection rates of new and old method under the null and under a true difference.

    true_difference=None skips the power half (halves the cost).  Old-method
    rates are nan for one seed (a t-test needs two).
    """
    rng = np.random.default_rng(rng_seed + n_seeds)
    fp_new, fp_old = _rates(*simulate_studies(rng, n_studies, n_seeds, n_images, 0.0, seed_sd), alpha)
    pw_new = pw_old = np.nan
    if true_difference is not None:
        pw_new, pw_old = _rates(
            *simulate_studies(rng, n_studies, n_seeds, n_images, true_difference, seed_sd), alpha
        )
    return dict(n_seeds=n_seeds, fpr_new=fp_new, fpr_old=fp_old, power_new=pw_new, power_old=pw_old)
