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


def _as_runs(correct, name):
    runs = np.asarray(correct, dtype=np.float64)
    runs = runs[None, :] if runs.ndim == 1 else runs
    if runs.ndim != 2 or runs.shape[1] < 2:
        raise ValueError(
            f"{name} must be shaped (seeds, test images) with at least 2 images, not {runs.shape}"
        )
    return runs


def _seed_components(runs):
    """(variance of the per-seed accuracies, seeds × images residual mean square); NaN with one seed."""
    seeds, images = runs.shape
    if seeds < 2:
        return math.nan, math.nan
    accuracy = runs.mean(axis=1)
    residual = runs - accuracy[:, None] - runs.mean(axis=0)[None, :] + runs.mean()
    return float(accuracy.var(ddof=1)), float((residual**2).sum() / ((seeds - 1) * (images - 1)))


def compare_accuracy(correct_a, correct_b, confidence=0.95):
    """Accuracy of model A minus model B over seeds *and* test images: effect, interval, p-value.

    ``correct_a`` and ``correct_b`` are per-image correctness shaped (seeds of A, images) and (seeds of B,
    images), the same images in the same order; seeds are not paired across models (1 against 3 is fine).
    Images are crossed with models and seeds nested in models:

        y[m, s, i] = mu_m + image_i + (model × image)_mi + seed_ms + e_msi

    so the effect's variance has a test-image part, σ²(model × image)/N, that no number of seeds shrinks,
    a seed × image part, σ²(e, m)/(S_m N), and a seed part, σ²(seed, m)/S_m. With
    d_i = mean over seeds of A's correctness − that of B's, image_i and the seed shifts cancel, so var(d)/N
    estimates the first two parts; the variance of each model's per-seed accuracies estimates
    σ²(seed, m) + σ²(e, m)/N, so the residual mean square of its seeds × images table, over N, is taken off
    before it is added (the method of moments: expected mean squares of a two-way layout). The parts are
    combined with Welch–Satterthwaite degrees of freedom (Satterthwaite 1946) and a t distribution.

    Why not the t-test across per-seed differences: the model × image part is the same in every seed, so
    it never shows as spread, and the test calls a test-set-specific difference significant (7–10 % of
    equal-accuracy studies with 3 seeds, 17–28 % with 5, at α = 5 %; the analogous failure of resampled
    t-tests is Dietterich 1998, Neural Computation 10(7)). Bouthillier et al. 2021 (MLSys, "Accounting
    for variance in machine learning benchmarks") show both test-set sampling and seeds move benchmark
    conclusions. Why not a two-level bootstrap: with 3 seeds there are only 10 distinct seed resamples,
    the plug-in seed variance is biased by (S − 1)/S, and resampling images within seed means counts the
    seed × image noise twice; the closed form avoids all three.

    A model with one seed borrows the other's seed variance (architectures assumed to vary alike from
    seed to seed, which beats assuming no variation); with one seed each there is no seed part (callers
    use the paired bootstrap and McNemar there). Returns a dict with the effect (a fraction), ci_low,
    ci_high, p_value, df, se, and the variance components used by ``seeds_to_settle``.
    """
    runs_a, runs_b = _as_runs(correct_a, "correct_a"), _as_runs(correct_b, "correct_b")
    if runs_a.shape[1] != runs_b.shape[1]:
        raise ValueError(
            f"correct_a and correct_b must cover the same test images: {runs_a.shape[1]} vs {runs_b.shape[1]}"
        )
    (seeds_a, images), seeds_b = runs_a.shape, runs_b.shape[0]
    d = runs_a.mean(axis=0) - runs_b.mean(axis=0)
    effect, var_d = float(d.mean()), float(d.var(ddof=1))
    (spread_a, residual_a), (spread_b, residual_b) = _seed_components(runs_a), _seed_components(runs_b)
    seed_a = max(0.0, spread_a - residual_a / images) if seeds_a > 1 else math.nan
    seed_b = max(0.0, spread_b - residual_b / images) if seeds_b > 1 else math.nan
    terms = [(var_d / images, images - 1)]  # (variance, its degrees of freedom)
    if seeds_a == seeds_b == 1:
        seed_a = seed_b = 0.0
        seed_part = "omitted"
    elif min(seeds_a, seeds_b) > 1:
        terms += [(seed_a / seeds_a, seeds_a - 1), (seed_b / seeds_b, seeds_b - 1)]
        seed_part = "estimated"
    else:  # one model's estimate stands for both: one term
        seed_a, residual_a = (seed_b, residual_b) if seeds_a == 1 else (seed_a, residual_a)
        seed_b, residual_b = (seed_a, residual_a) if seeds_b == 1 else (seed_b, residual_b)
        terms += [(seed_a / seeds_a + seed_b / seeds_b, max(seeds_a, seeds_b) - 1)]
        seed_part = "borrowed"
    variance = sum(term for term, _ in terms)
    result = {
        "effect": effect, "n_images": images, "n_seeds_a": seeds_a, "n_seeds_b": seeds_b, "seed_part": seed_part,
        "var_images": var_d / images, "var_seeds": variance - var_d / images,
        "var_seeds_a": seed_a, "var_seeds_b": seed_b, "var_residual_a": residual_a, "var_residual_b": residual_b,
        # var(d) less the seed × image noise it carries: the model × image variance, which seeds cannot
        # shrink (NaN with one seed each: not separable from that noise)
        "var_model_image": max(0.0, var_d - residual_a / seeds_a - residual_b / seeds_b)
        if seed_part != "omitted" else math.nan,
    }  # fmt: skip
    if variance <= 1e-15:  # no variation at all: the difference is known exactly
        p = 1.0 if abs(effect) < 1e-12 else 0.0
        return {**result, "se": 0.0, "df": math.inf, "ci_low": effect, "ci_high": effect, "p_value": p}
    se = math.sqrt(variance)
    df = variance**2 / sum(term**2 / dof for term, dof in terms if term > 0)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    p = min(1.0, 2 * stats.t.sf(abs(effect) / se, df))
    return {**result, "se": se, "df": df, "ci_low": effect - half, "ci_high": effect + half, "p_value": p}


def seeds_to_settle(correct_a, correct_b, target_effect, power=0.8, alpha=0.05, margin=None, max_seeds=100):
    """Seeds per model (the same for both) that would settle a claim, from this run's own variance parts.

    Superiority (no ``margin``): the fewest seeds S ≥ 2 with ``power`` to detect ``target_effect`` (the
    effect the source study reported, never the observed one) at level ``alpha``:
    |target| / se(S) ≥ t(1 − α/2) + t(power). Equivalence: the fewest S with probability ``power`` that
    the interval lies inside ±``margin`` when the true difference is ``target_effect``. The test-image
    part does not shrink with seeds, so there may be no such S: None ("not with this test set"), as when
    either model has a single seed (no seed variance to go on) or the target is 0.
    """
    runs_a, runs_b = _as_runs(correct_a, "correct_a"), _as_runs(correct_b, "correct_b")
    if min(len(runs_a), len(runs_b)) < 2 or (margin is None and target_effect == 0):
        return None
    parts = compare_accuracy(runs_a, runs_b, 1 - alpha)
    images, seeds = parts["n_images"], np.arange(2, max_seeds + 1)
    fixed = parts["var_model_image"] / images
    seed_part = (parts["var_seeds_a"] + parts["var_seeds_b"]) / seeds
    variance = fixed + (parts["var_residual_a"] + parts["var_residual_b"]) / (images * seeds) + seed_part
    if variance[0] <= 1e-15:
        return 2
    df = variance**2 / ((variance - seed_part) ** 2 / (images - 1) + seed_part**2 / (2 * (seeds - 1)))
    se, critical = np.sqrt(variance), stats.t.ppf(1 - alpha / 2, df)
    if margin is None:
        enough = abs(target_effect) / se >= critical + stats.t.ppf(power, df)
    else:  # the estimate ~ N(target, se²); its interval is estimate ± critical·se
        half = critical * se
        inside = stats.norm.cdf((margin - half - target_effect) / se)
        inside -= stats.norm.cdf((half - margin - target_effect) / se)
        enough = inside >= power
    return int(seeds[np.argmax(enough)]) if enough.any() else None  # se falls with S: the first is the fewest
