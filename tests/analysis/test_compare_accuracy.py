"""compare_accuracy and seeds_to_settle: calibrated by simulated studies, and known answers by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from cnnstudy.analysis.stats import compare_accuracy, seeds_to_settle
from helpers.simulation import false_positive_and_power, simulate_studies


def test_simulation_matches_its_description():
    a, b = simulate_studies(np.random.default_rng(1), 20, 3, 4000, 0.0)
    assert 0.18 < (a[:, 0] != b[:, 0]).mean() < 0.23  # models disagree ~20 %
    assert 0.007 < a.mean(axis=2).std(axis=1, ddof=1).mean() < 0.014  # ~1 point seed spread
    a, b = simulate_studies(np.random.default_rng(2), 200, 1, 4000, 0.03)
    assert abs((a.mean() - b.mean()) - 0.03) < 0.004


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_false_positive_rate_is_nominal(n_seeds):
    r = (
        false_positive_and_power(n_seeds)
        if n_seeds == 3
        else false_positive_and_power(n_seeds, true_difference=None)
    )
    assert 0.02 <= r["fpr_new"] <= 0.08, r


def test_old_method_is_overconfident():
    # Proves the simulation can tell a calibrated test from the one it replaces.
    r = false_positive_and_power(5, true_difference=None)
    assert r["fpr_old"] > 0.08, r


def test_power_three_seeds():
    r = false_positive_and_power(3)
    assert r["power_new"] > 0.5, r


def test_one_seed_images_part_is_calibrated_without_seed_noise():
    # 1 vs 1 falls back to the test-image part; it is exact when seeds add nothing,
    # and (by design) overconfident otherwise: a single run cannot see seed spread.
    no_seed_noise = false_positive_and_power(1, true_difference=None, seed_sd=0.0)
    with_seed_noise = false_positive_and_power(1, true_difference=None)
    assert 0.02 <= no_seed_noise["fpr_new"] <= 0.08
    assert with_seed_noise["fpr_new"] > 0.08


# ---------------------------------------------------------------- known answers
def test_identical_runs():
    y = np.random.default_rng(3).random((1, 300)) < 0.8
    r = compare_accuracy(y, y)
    assert (r["effect"], r["ci_low"], r["ci_high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    r = compare_accuracy(np.repeat(y, 3, 0), np.repeat(y, 2, 0))
    assert (r["effect"], r["ci_low"], r["ci_high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)


def test_identical_runs_with_seed_spread_give_p_one_but_a_real_interval():
    y = np.random.default_rng(4).random((3, 300)) < 0.8
    r = compare_accuracy(y, y)
    assert r["effect"] == 0.0 and r["p_value"] == 1.0 and r["ci_low"] < 0 < r["ci_high"]


def test_zero_variance_nonzero_effect():
    r = compare_accuracy(np.ones((3, 50), bool), np.zeros((2, 50), bool))
    assert (r["effect"], r["ci_low"], r["ci_high"], r["p_value"]) == (1.0, 1.0, 1.0, 0.0)


def test_hand_computed_components():
    a = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)  # accuracies .75 .75
    b = np.array([[1, 1, 1, 0], [0, 0, 1, 0]], bool)  # accuracies .75 .25
    r = compare_accuracy(a, b)
    # d = [.5, 0, -.5, 1]: mean .25, var 5/12 -> image part 5/12/4 = 5/48.
    # Residual mean squares (2x4 two-way ANOVA): A 1/3, B 1/6.
    # Seed components: A max(0, 0 - (1/3)/4) = 0;  B .125 - (1/6)/4 = 1/12.
    # Seed part 0/2 + (1/12)/2 = 2/48; df = (7/48)^2 / ((5/48)^2/3 + (2/48)^2/1) = 147/37.
    expect = dict(
        effect=0.25,
        var_images=5 / 48,
        var_seeds=2 / 48,
        var_residual_a=1 / 3,
        var_residual_b=1 / 6,
        var_seeds_a=0.0,
        var_seeds_b=1 / 12,
        var_model_image=5 / 12 - 1 / 6 - 1 / 12,
        se=np.sqrt(7 / 48),
        df=147 / 37,
    )
    for k, v in expect.items():
        assert r[k] == pytest.approx(v), k
    half = stats.t.ppf(0.975, 147 / 37) * np.sqrt(7 / 48)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.25 - half, 0.25 + half))
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(0.25 / np.sqrt(7 / 48), 147 / 37))


def test_one_vs_three_seeds_borrows_seed_variance():
    rng = np.random.default_rng(5)
    a, b = rng.random((1, 400)) < 0.8, rng.random((3, 400)) < 0.75
    r = compare_accuracy(a, b)
    assert r["seed_part"] == "borrowed" and r["n_seeds_a"] == 1 and r["n_seeds_b"] == 3
    assert r["var_seeds_a"] == r["var_seeds_b"]
    assert r["effect"] == pytest.approx(a.mean() - b.mean())
    assert r["var_images"] == pytest.approx((a.mean(0) - b.mean(0)).var(ddof=1) / 400)
    assert r["var_seeds"] == pytest.approx(r["var_seeds_b"] * (1 + 1 / 3))
    one = compare_accuracy(a, b[:1])
    assert one["seed_part"] == "omitted" and one["var_seeds"] == 0.0
    assert np.isnan(one["var_model_image"])  # not separable from seed x image noise
    assert compare_accuracy(a[0], b[0])["n_seeds_a"] == 1  # 1-D input = one seed


def test_mismatched_images_rejected():
    with pytest.raises(ValueError, match="same test images: 300 vs 299"):
        compare_accuracy(np.ones((3, 300), bool), np.ones((3, 299), bool))
    with pytest.raises(ValueError, match="shaped"):
        compare_accuracy(np.ones((2, 3, 4), bool), np.ones((3, 4), bool))


# ---------------------------------------------------------------- seeds_to_settle
@pytest.fixture(scope="module")
def study():
    a, b = simulate_studies(np.random.default_rng(6), 1, 3, 4000, 0.0)
    return a[0], b[0]


def _floor(study):
    """Standard error left with infinitely many seeds: the test-set part."""
    r = compare_accuracy(*study)
    return np.sqrt(r["var_model_image"] / r["n_images"])


def test_seeds_to_settle_monotone_in_target(study):
    # Power 80 % at alpha 5 % needs target >= (1.96 + 0.84) * se, so >= 2.8 floors.
    n = [seeds_to_settle(*study, k * _floor(study)) for k in (2.9, 3.0, 3.2, 3.5, 4, 6, 10)]
    assert None not in n, n
    assert n == sorted(n, reverse=True) and n[0] > n[-1] == 2, n
    assert seeds_to_settle(*study, -0.05) == seeds_to_settle(*study, 0.05)  # sign-free


def test_seeds_to_settle_none_when_test_set_too_small(study):
    assert seeds_to_settle(*study, 2.7 * _floor(study), max_seeds=10**5) is None
    assert seeds_to_settle(*study, 0.0) is None  # a zero effect cannot be detected


def test_seeds_to_settle_one_seed_is_not_estimable(study):
    a, b = study
    assert seeds_to_settle(a[:1], b, 0.03) is None
    assert seeds_to_settle(a, b[:1], 0.03, margin=0.05) is None


def test_seeds_to_settle_equivalence(study):
    f = _floor(study)
    n = [seeds_to_settle(*study, 0.0, margin=k * f) for k in (3.4, 4, 5, 8)]
    assert None not in n and n == sorted(n, reverse=True) and n[0] > n[-1], n
    # a true difference eats into the margin
    assert seeds_to_settle(*study, f, margin=4 * f) >= seeds_to_settle(*study, 0.0, margin=4 * f)
    # |estimate| + 1.96 se < margin w.p. 80 % needs margin >= (1.96 + 1.28) floors
    assert seeds_to_settle(*study, 0.0, margin=3.1 * f, max_seeds=10**5) is None


def settle_by_hand(a, b, target, power=0.8, alpha=0.05, margin=None, max_seeds=100):
    """seeds_to_settle as its docstring states it, one number of seeds at a time: the variance with S seeds
    per model is the model × image part over N, the seed × image noise over N·S and the seed parts over S;
    Welch–Satterthwaite degrees of freedom give the test-image part N − 1 and the seed part 2(S − 1)."""
    import math

    parts = compare_accuracy(a, b)
    n = parts["n_images"]
    for s in range(2, max_seeds + 1):
        seed_part = (parts["var_seeds_a"] + parts["var_seeds_b"]) / s
        images_part = parts["var_model_image"] / n + (parts["var_residual_a"] + parts["var_residual_b"]) / (
            n * s
        )
        variance = images_part + seed_part
        df = variance**2 / (images_part**2 / (n - 1) + seed_part**2 / (2 * (s - 1)))
        se, critical = math.sqrt(variance), stats.t.ppf(1 - alpha / 2, df)
        if margin is None:
            settled = abs(target) / se >= critical + stats.t.ppf(power, df)
        else:
            inside = stats.norm.cdf((margin - critical * se - target) / se)
            settled = inside - stats.norm.cdf((critical * se - margin - target) / se) >= power
        if settled:
            return s
    return None


@pytest.fixture(scope="module")
def small_study():
    """Three seeds against two on 40 images, each seed shifted as a whole: few enough images that the
    degrees of freedom move the answer, and a seed part for both models."""
    rng = np.random.default_rng(14)
    difficulty = rng.random(40)
    a = rng.random((3, 40)) < np.clip(0.2 + 0.6 * difficulty + rng.normal(0, 0.12, (3, 1)), 0, 1)
    b = rng.random((2, 40)) < np.clip(0.1 + 0.6 * difficulty + rng.normal(0, 0.12, (2, 1)), 0, 1)
    return a, b


def test_seeds_to_settle_matches_its_definition_seed_by_seed(small_study):
    """Over a fine scan of targets and margins, so that every step from S to S + 1 seeds is crossed."""
    parts = compare_accuracy(*small_study)
    assert parts["var_seeds_a"] > 0 and parts["var_seeds_b"] > 0 and parts["var_model_image"] > 0
    floor = np.sqrt(parts["var_model_image"] / 40)
    targets = floor * np.linspace(3.2, 14, 120)
    expected = [settle_by_hand(*small_study, t) for t in targets]
    assert len(set(expected)) > 20  # from None down to 2 seeds, through every step between
    assert [seeds_to_settle(*small_study, t) for t in targets] == expected
    margins = floor * np.linspace(4, 20, 80)
    for target in (0.0, 0.5 * floor):
        expected = [settle_by_hand(*small_study, target, margin=m) for m in margins]
        assert len(set(expected)) > 10
        assert [seeds_to_settle(*small_study, target, margin=m) for m in margins] == expected
    assert seeds_to_settle(*small_study, 5 * floor, power=0.9, alpha=0.01) == settle_by_hand(
        *small_study, 5 * floor, power=0.9, alpha=0.01
    )


def test_seeds_to_settle_counts_up_to_max_seeds_inclusive(small_study):
    floor = np.sqrt(compare_accuracy(*small_study)["var_model_image"] / 40)
    needed = seeds_to_settle(*small_study, 6 * floor)
    assert needed == 14
    assert seeds_to_settle(*small_study, 6 * floor, max_seeds=14) == 14
    assert seeds_to_settle(*small_study, 6 * floor, max_seeds=13) is None


def test_seeds_to_settle_edge_cases():
    two_each = np.ones((2, 50), bool), np.zeros((2, 50), bool)
    assert seeds_to_settle(*two_each, 0.1) == 2  # no variation at all: two seeds settle any difference
    assert seeds_to_settle(*two_each, 0.0, power=0.01) is None  # a zero effect is never detected
    with pytest.raises(ValueError, match="correct_a must be shaped"):
        seeds_to_settle(np.ones((2, 3, 4), bool), np.ones((2, 4), bool), 0.1)
    with pytest.raises(ValueError, match="correct_b must be shaped"):
        seeds_to_settle(np.ones((2, 4), bool), np.ones((2, 1), bool), 0.1)


def test_the_variance_parts_combine_as_documented(small_study):
    """Seeds of both models estimated: the effect's variance is the image part plus each model's seed
    part over its seeds, with Welch–Satterthwaite degrees of freedom (the components themselves are
    checked by hand above)."""
    r = compare_accuracy(*small_study)
    terms = [(r["var_images"], 39), (r["var_seeds_a"] / 3, 2), (r["var_seeds_b"] / 2, 1)]
    variance = sum(term for term, _ in terms)
    assert r["seed_part"] == "estimated" and r["var_seeds"] == pytest.approx(variance - r["var_images"])
    assert r["se"] == pytest.approx(np.sqrt(variance))
    assert r["df"] == pytest.approx(variance**2 / sum(term**2 / dof for term, dof in terms))
    two_each = compare_accuracy(small_study[0][:2], small_study[1])
    assert two_each["seed_part"] == "estimated" and two_each["n_seeds_a"] == 2


def test_a_borrowed_seed_part_has_the_larger_models_degrees_of_freedom(small_study):
    a, b = small_study
    r = compare_accuracy(a[:1], b)  # one seed against two: b's seed variance stands for both
    seed_term = r["var_seeds_b"] / 1 + r["var_seeds_b"] / 2
    variance = r["var_images"] + seed_term
    assert r["seed_part"] == "borrowed" and r["var_seeds"] == pytest.approx(seed_term)
    assert r["var_residual_a"] == r["var_residual_b"]
    assert r["df"] == pytest.approx(variance**2 / (r["var_images"] ** 2 / 39 + seed_term**2 / 1))
    flipped = compare_accuracy(b, a[:1])
    assert flipped["var_seeds_a"] == flipped["var_seeds_b"] == r["var_seeds_b"]


def test_one_seed_each_has_no_seed_part_at_all():
    y = np.random.default_rng(9).random((2, 100)) < 0.7
    r = compare_accuracy(y[:1], y[1:])
    assert (r["var_seeds_a"], r["var_seeds_b"], r["var_seeds"]) == (0.0, 0.0, 0.0)


def test_a_known_difference_has_no_spread_and_infinite_degrees_of_freedom():
    r = compare_accuracy(np.ones((3, 2), bool), np.zeros((2, 2), bool))  # two images are enough
    assert (r["se"], r["df"], r["ci_low"], r["ci_high"]) == (0.0, math.inf, 1.0, 1.0)


def test_the_wrongly_shaped_model_is_named():
    with pytest.raises(ValueError, match="^correct_a must be shaped"):
        compare_accuracy(np.ones((2, 3, 4), bool), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="^correct_b must be shaped"):
        compare_accuracy(np.ones((3, 4), bool), np.ones((3, 1), bool))
