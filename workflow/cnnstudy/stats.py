"""Small statistical functions behind the accuracy intervals and the checks of the study's claims.

Every distribution comes from scipy; what lives here is the choice of test, its orientation, and the
degenerate cases scipy answers with a warning or NaN (no disagreements, no spread), which we answer
ourselves because the answer is known.
"""

import math

import numpy as np
from scipy import stats

# resamples drawn per batch: 500 × 4,000 images of int64 indices is 16 MB, not the 320 MB of all 10,000
BOOTSTRAP_BATCH = 500


def wilson_interval(correct, total, confidence):
    """Wilson score interval for an accuracy of ``correct`` out of ``total``.

    Wilson rather than the normal approximation: it stays inside [0, 1] and keeps its coverage near 0 % and
    100 %, where a small test set's accuracy can sit. No images: (NaN, NaN), since nothing was measured.
    """
    if total == 0:
        return math.nan, math.nan
    interval = stats.binomtest(int(correct), int(total)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def mcnemar_exact(a_only_correct, b_only_correct):
    """Two-sided exact McNemar p-value: only the images where exactly one model is right carry information,
    and under "no difference" each of them is equally likely to favour either model (binomial, p = 0.5).

    No discordant images: p = 1 (the models never disagree, so there is no evidence of a difference).
    """
    discordant = int(a_only_correct) + int(b_only_correct)
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(int(a_only_correct), discordant, p=0.5).pvalue)


def _difference_of_means(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_bootstrap_interval(correct_a, correct_b, confidence, resamples, seed):
    """Percentile interval for accuracy(A) − accuracy(B), resampling test images with both models' answers
    kept together (paired), so the interval reflects the test set's size and the models' correlation.

    Identical per-image differences (e.g. identical predictions) have a known answer, (d, d); scipy would
    warn and may return NaN there.
    """
    correct_a = np.asarray(correct_a, dtype=np.float64)
    correct_b = np.asarray(correct_b, dtype=np.float64)
    differences = correct_a - correct_b
    if differences.size == 0:
        return math.nan, math.nan
    if np.all(differences == differences[0]):
        return float(differences[0]), float(differences[0])
    result = stats.bootstrap(
        (correct_a, correct_b),
        _difference_of_means,
        paired=True,
        vectorized=True,
        method="percentile",
        confidence_level=confidence,
        n_resamples=int(resamples),
        batch=BOOTSTRAP_BATCH,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_accuracy(correct_a, correct_b, confidence, resamples, seed):
    """Two models' answers on the same images: accuracies, difference A − B with its bootstrap interval,
    the images only one of them got right, and the exact McNemar p-value (also as ``p_value``)."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    a_only, b_only = int(np.sum(correct_a & ~correct_b)), int(np.sum(correct_b & ~correct_a))
    low, high = paired_bootstrap_interval(correct_a, correct_b, confidence, resamples, seed)
    p = mcnemar_exact(a_only, b_only)
    accuracy_a, accuracy_b = float(np.mean(correct_a)), float(np.mean(correct_b))
    return {
        "n_images": len(correct_a),
        "accuracy_a": accuracy_a,
        "accuracy_b": accuracy_b,
        "difference": accuracy_a - accuracy_b,
        "ci_low": low,
        "ci_high": high,
        "a_only_correct": a_only,
        "b_only_correct": b_only,
        "p_mcnemar": p,
        "p_value": p,
    }


def t_across_seeds(differences, confidence):
    """Mean of per-seed differences, its t-interval and the two-sided one-sample t-test p against 0.

    Returns (mean, low, high, p). Seed-to-seed variation is the thing a single test set cannot show, so
    with several seeds this is the test that counts. Degenerate cases: fewer than two seeds, no test
    (NaN); every seed at exactly 0, no difference (0, 0, 0, p = 1); every seed at the same non-zero value,
    no spread to scale a t statistic by, so no test either (scipy would answer p = 0, which overstates it).
    """
    differences = np.asarray(differences, dtype=np.float64)
    if differences.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(np.mean(differences))
    if differences.size < 2:
        return mean, math.nan, math.nan, math.nan
    # equal up to rounding: accuracies from different image counts can differ in the last bit, and scipy
    # would turn that noise into an enormous t statistic
    if np.allclose(differences, differences[0], rtol=0, atol=1e-12):
        return (0.0, 0.0, 0.0, 1.0) if abs(mean) <= 1e-12 else (mean, math.nan, math.nan, math.nan)
    result = stats.ttest_1samp(differences, 0.0)
    interval = result.confidence_interval(confidence_level=confidence)
    return mean, float(interval.low), float(interval.high), float(result.pvalue)


def holm(p_values):
    """Holm's step-down adjustment: the k-th smallest of m p-values is multiplied by (m − k + 1), then made
    monotone and capped at 1. It controls the chance of any false "supported" across the family without
    assuming the tests are independent (they are not: several claims share the baseline).

    NaN (a pair without a test) passes through and does not count towards m.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p_values, np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    order = tested[np.argsort(p_values[tested], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


SUPPORTED, NOT_SUPPORTED, CONTRADICTED = "supported", "not supported", "contradicted"


def format_p(p):
    """p-values as people read them: 0.032, 4.1e-05, or < 1e-6 (beyond that the digits mean nothing)."""
    if p is None or math.isnan(p):
        return "—"
    if p < 1e-6:
        return "< 1e-6"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def superiority_verdict(ci_low, ci_high, p_holm, alpha):
    """ "A is better than B" from a tested effect (positive = A better): significance after Holm *and* an
    interval on one side of 0, so the two methods must agree before anything is called."""
    p_text = format_p(p_holm)
    holm_p = f"Holm p {p_text}" if p_text.startswith("<") else f"Holm p = {p_text}"
    if p_holm < alpha and ci_low > 0:
        return SUPPORTED, f"{holm_p}, below α = {alpha:g}, and the interval lies above 0"
    if p_holm < alpha and ci_high < 0:
        return (
            CONTRADICTED,
            f"{holm_p}, below α = {alpha:g}, and the interval lies below 0: the other model is better",
        )
    if p_holm >= alpha:
        return NOT_SUPPORTED, f"{holm_p}, not below α = {alpha:g}"
    return NOT_SUPPORTED, "the interval includes 0"


def equivalence_verdict(effect, ci_low, ci_high, margin, non_negative, margin_text):
    """ "A and B differ by less than ``margin``" from the interval alone: a large p-value is no evidence of a
    small difference, an interval inside ±margin is. ``non_negative``: A must also not be worse."""
    within = f"±{margin_text}"
    if ci_low > margin or ci_high < -margin:
        return CONTRADICTED, f"the interval lies entirely outside {within}"
    if non_negative and ci_high < 0:
        return CONTRADICTED, "the interval lies below 0: the first model is worse"
    if ci_low < -margin or ci_high > margin:
        return (
            NOT_SUPPORTED,
            f"the interval crosses the margin {within}: too uncertain to call the difference small",
        )
    if non_negative and effect < 0:
        return NOT_SUPPORTED, f"the interval lies inside {within} but the first model is worse (effect < 0)"
    return SUPPORTED, f"the interval lies inside {within}" + (
        " and the effect is ≥ 0" if non_negative else ""
    )
