import json
import math
import random

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from cnnstudy.analysis.claims import (
    BOOTSTRAP_METHOD,
    CLAIM_COLUMNS,
    COMPARISON_COLUMNS,
    CROSSED_METHOD,
    ONE_SEED,
    PAIR_COLUMNS,
    T_METHOD,
    Run,
    best_epoch_gap,
    check_claims,
    data_premise,
    effect_in_words,
    epochs_to_95,
    format_effect,
    load_runs,
    pairwise_comparisons,
)
from cnnstudy.analysis.claims_tables import write_claims, write_comparisons
from cnnstudy.analysis.stats import (
    NOT_SUPPORTED,
    compare_accuracy,
    equivalence_verdict,
    holm,
    paired_accuracy,
    seeds_to_settle,
    superiority_verdict,
    t_across_seeds,
)
from cnnstudy.figures.claims import draw_comparison_effects, plot_comparison_effects

STUDY_MD5 = "e793b78cc4c9e9a4ccc0c1155377a412"
STUDY = {
    "dataset_md5": STUDY_MD5,
    "image_size": 160,
    "reported": {
        "baseline": {"test_accuracy": 0.6203, "minutes": 14},
        "batchnorm": {"test_accuracy": 0.6631, "minutes": 16},
        "combined": {"test_accuracy": 0.6980, "minutes": 20},
    },
}
RESNETS = ("resnet18_bn_frozen", "resnet18_bn_unfrozen")


def correctness(n, a_only, b_only, both=None):
    """Answers of two models on n images: a_only images only A gets right, b_only only B, both the rest of
    the first half (so the models also share right and wrong answers)."""
    both = n // 2 if both is None else both
    a, b = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    a[:both] = b[:both] = True
    a[both : both + a_only] = True
    b[both + a_only : both + a_only + b_only] = True
    return a, b


def history(epochs_to_best=5, gap=0.1, epochs=10):
    """A history whose first epoch at ≥ 95 % of its best validation accuracy is ``epochs_to_best`` and whose
    train (evaluation mode) − validation gap at the best epoch is ``gap``; the running training accuracy
    is lower, as dropout makes it."""
    val = np.where(np.arange(1, epochs + 1) < epochs_to_best, 0.2, 0.6)
    return pd.DataFrame(
        {"epoch": np.arange(1, epochs + 1), "train_accuracy": val, "train_eval_accuracy": val + gap,
         "val_accuracy": val}
    )  # fmt: skip


def make_run(model, correct, seed=0, hist=None, md5=STUDY_MD5, image_size=160, pretrained=None):
    n = len(correct)
    true = np.arange(n) % 10
    predictions = pd.DataFrame(
        {
            "file": [f"val/n{i % 10:02d}/image{i:05d}.JPEG" for i in range(n)],
            "true": true,
            "predicted": np.where(correct, true, (true + 1) % 10),
            "confidence": 0.9,
        }
    )
    if pretrained is None and model.startswith("resnet"):
        pretrained = True
    metrics = {
        "model": model,
        "seed": seed,
        "pretrained": pretrained,
        "dataset": "imagenette2-160" if md5 == STUDY_MD5 else "imagenette-demo",
        "archive_md5": md5,
        "image_size": image_size,
        "accuracy": float(np.mean(correct)),
        "n_images": n,
    }
    return Run(
        model, seed, metrics, predictions, history() if hist is None else hist, source=f"{model}/{seed}"
    )


def config(*statements, resamples=300):
    return {
        "confidence": 0.95,
        "alpha": 0.05,
        "bootstrap_resamples": resamples,
        "bootstrap_seed": 0,
        "statements": list(statements),
    }


def statement(claim_id, outcome, models, measure="test_accuracy", **extra):
    return {
        "id": claim_id,
        "text": f"{claim_id}.",
        "measure": measure,
        "outcome": outcome,
        "models": models,
        **extra,
    }


def better(first, second, claim_id="claim", measure="test_accuracy"):
    return statement(claim_id, "better", [first, second], measure)


def equivalent(first, second, non_negative=True):
    return statement("small_gain", "equivalent", [first, second], margin=0.02, non_negative=non_negative)


def one_claim(runs, statement):
    claims, pairs = check_claims(runs, config(statement), STUDY)
    return claims.iloc[0], pairs


@pytest.mark.parametrize(
    ("a_only", "b_only", "verdict"),
    [(80, 0, "supported"), (6, 4, "not supported"), (0, 80, "contradicted")],
)
def test_better_claim_verdicts(a_only, b_only, verdict):
    a, b = correctness(400, a_only, b_only)
    claim, pairs = one_claim(
        [make_run("batchnorm", a), make_run("baseline", b)], better("batchnorm", "baseline")
    )
    assert claim["verdict"] == verdict
    assert claim["effect"] == pytest.approx((a_only - b_only) / 400)
    assert pairs.iloc[0]["method"] == BOOTSTRAP_METHOD
    assert pairs.iloc[0]["reported_difference"] == pytest.approx(0.6631 - 0.6203)


def test_best_of_needs_every_pair():
    n = 400
    combined = correctness(n, 80, 0)[0]  # right on the first 280 images
    strong_rival = combined.copy()
    strong_rival[200:275] = False
    strong_rival[280:350] = True  # 75 only combined right, 70 only the rival right: no clear difference
    runs = [
        make_run("combined", combined),
        make_run("baseline", correctness(n, 80, 0)[1]),
        make_run("dropout", strong_rival),
    ]
    best = statement("combined_is_best_cnn", "best_of", ["combined", "baseline", "dropout"])
    claims, pairs = check_claims(runs, config(best), STUDY)
    assert list(pairs["verdict"]) == ["supported", "not supported"]
    claim = claims.iloc[0]
    assert claim["verdict"] == "not supported"
    assert "vs dropout" in claim["reason"] and "vs baseline" not in claim["reason"]
    assert claim["effect"] == pytest.approx(5 / n)  # the weakest pair's effect
    weakest = pairs[pairs["model_b"] == "dropout"].iloc[0]  # its own p and Holm p, beside its own effect
    assert (claim["p_value"], claim["p_holm"]) == pytest.approx((weakest["p_value"], weakest["p_holm"]))


def test_holm_is_applied_across_the_tested_claims_only():
    a, b = correctness(400, 14, 4)  # McNemar p ≈ 0.031 alone: supported only without a correction
    runs = [make_run("batchnorm", a), make_run("baseline", b), make_run("dropout", b)]
    runs += [make_run(name, a) for name in RESNETS]
    statements = [better("batchnorm", "baseline", "one"), better("batchnorm", "dropout", "two")]
    claims, pairs = check_claims(runs, config(*statements, equivalent(*reversed(RESNETS))), STUDY)
    assert pairs["p_value"].iloc[0] < 0.05
    assert pairs["p_holm"].iloc[:2].tolist() == pytest.approx([2 * pairs["p_value"].iloc[0]] * 2)
    assert math.isnan(pairs["p_holm"].iloc[2]) and math.isnan(pairs["p_value"].iloc[2])
    assert list(claims["verdict"][:2]) == ["not supported", "not supported"]


@pytest.mark.parametrize(
    ("a_only", "b_only", "non_negative", "verdict", "words"),
    [
        (30, 10, True, "supported", "inside ±2.0 pp"),
        (400, 0, True, "contradicted", "entirely outside"),
        (10, 30, True, "contradicted", "below 0"),
        (18, 22, True, "not supported", "first model is worse"),
        (18, 22, False, "supported", "inside"),
    ],
)
def test_equivalence_claims(a_only, b_only, non_negative, verdict, words):
    a, b = correctness(4000, a_only, b_only)
    runs = [make_run(RESNETS[1], a), make_run(RESNETS[0], b)]
    claim, _ = one_claim(runs, equivalent(RESNETS[1], RESNETS[0], non_negative))
    assert claim["verdict"] == verdict
    assert words in claim["reason"]
    assert math.isnan(claim["p_value"])  # judged by the interval, never by a p-value


def test_equivalence_not_supported_when_the_interval_crosses_the_margin():
    a, b = correctness(200, 20, 16)
    claim, _ = one_claim(
        [make_run(RESNETS[1], a), make_run(RESNETS[0], b)], equivalent(RESNETS[1], RESNETS[0])
    )
    assert claim["ci_high"] > 0.02
    assert claim["verdict"] == "not supported" and "crosses the margin" in claim["reason"]


def test_missing_model_is_not_applicable():
    a, _ = correctness(100, 10, 0)
    claim, _ = one_claim([make_run("batchnorm", a)], better("batchnorm", "baseline"))
    assert claim["verdict"] == "not applicable"
    assert "baseline was not trained in this run" in claim["reason"]


def test_other_dataset_is_not_applicable_but_still_measured():
    a, b = correctness(400, 80, 0)
    runs = [
        make_run("batchnorm", a, md5="0" * 32, image_size=64),
        make_run("baseline", b, md5="0" * 32, image_size=64),
    ]
    claim, pairs = one_claim(runs, better("batchnorm", "baseline"))
    assert claim["verdict"] == "not applicable"
    assert "not the study's data" in claim["reason"] and "as measured: supported" in claim["reason"]
    assert "imagenette-demo (md5 00000000…) at 64 px" in data_premise(runs, STUDY)
    assert claim["effect"] == pytest.approx(0.2)
    assert pairs.iloc[0]["verdict"] == "not applicable"


def test_random_init_resnet_is_not_applicable():
    a, b = correctness(400, 80, 0)
    runs = [make_run(RESNETS[0], a, pretrained=False), make_run("combined", b)]
    claim, _ = one_claim(runs, better(RESNETS[0], "combined"))
    assert claim["verdict"] == "not applicable"
    assert f"{RESNETS[0]} not pretrained (random init)" in claim["reason"]


def test_history_claims_with_one_seed_have_no_test():
    runs = [
        make_run("batchnorm", correctness(100, 0, 0)[0], hist=history(epochs_to_best=3, gap=0.05)),
        make_run("baseline", correctness(100, 0, 0)[0], hist=history(epochs_to_best=6, gap=0.2)),
    ]
    statements = [
        better("batchnorm", "baseline", "faster", "epochs_to_95"),
        better("batchnorm", "baseline", "gap", "best_epoch_gap"),
    ]
    claims, pairs = check_claims(runs, config(*statements), STUDY)
    assert list(claims["verdict"]) == ["not supported", "not supported"]
    assert all(reason.startswith(ONE_SEED) and "direction agrees" in reason for reason in claims["reason"])
    assert claims["effect"].tolist() == pytest.approx([3, 0.15])  # lower is better: positive = first better
    assert pairs["ci_low"].isna().all() and pairs["p_value"].isna().all()


def test_history_claims_with_several_seeds_use_a_t_test():
    runs = []
    for seed, (fast, slow) in enumerate([(3, 6), (4, 9), (2, 6)]):
        correct = correctness(100, 0, 0)[0]
        runs += [
            make_run("batchnorm", correct, seed, history(fast)),
            make_run("baseline", correct, seed, history(slow)),
        ]
    claim, pairs = one_claim(runs, better("batchnorm", "baseline", measure="epochs_to_95"))
    assert pairs.iloc[0]["method"] == T_METHOD
    assert claim["seeds"] == 3
    assert claim["effect"] == pytest.approx(4)  # savings 3, 5, 4 epochs
    assert claim["p_value"] == pytest.approx(2 * stats.t.sf(4 / (1 / math.sqrt(3)), df=2))  # mean 4, sd 1
    assert claim["verdict"] == "supported"


def test_measures_from_history():
    assert epochs_to_95(history(epochs_to_best=4)) == 4
    assert best_epoch_gap(history(gap=0.12)) == pytest.approx(0.12)


def test_epochs_to_95_moves_with_its_threshold():
    rows = {"epoch": [1, 2, 3, 4, 5], "val_accuracy": [0.5, 0.86, 0.93, 0.96, 1.0]}
    assert epochs_to_95(pd.DataFrame(rows)) == 4  # 0.96 is the first ≥ 0.95; 90 % would say 3, 85 % 2


def test_the_gap_is_taken_at_the_best_epoch_in_evaluation_mode():
    rows = {"epoch": [1, 2, 3, 4], "val_accuracy": [0.5, 0.7, 0.6, 0.7],
            "train_eval_accuracy": [0.55, 0.8, 0.9, 0.99], "train_accuracy": [0.1, 0.1, 0.1, 0.1]}  # fmt: skip
    assert best_epoch_gap(pd.DataFrame(rows)) == pytest.approx(0.1)  # epoch 2: first at the best, not 4


def test_pairwise_comparisons_add_an_across_seeds_row():
    runs = []
    for seed, (a_only, b_only) in enumerate([(30, 10), (25, 10)]):
        a, b = correctness(400, a_only, b_only)
        runs += [make_run("batchnorm", a, seed), make_run("baseline", b, seed)]
    frame = pairwise_comparisons(runs, ["batchnorm", "baseline", "dropout"], 0.95, 200, 0)
    assert list(frame.columns) == COMPARISON_COLUMNS
    assert list(frame["seed"]) == [0, 1, "mean"]
    assert list(frame["method"]) == [BOOTSTRAP_METHOD, BOOTSTRAP_METHOD, CROSSED_METHOD]
    assert frame["difference"].tolist() == pytest.approx([0.05, 0.0375, 0.04375])
    assert frame["a_only_correct"].tolist()[:2] == [30, 25]


def test_a_multi_seed_accuracy_claim_is_judged_on_every_seed_of_both_models():
    runs = []
    for seed, (a_only, b_only) in enumerate([(60, 0), (0, 20), (0, 20)]):  # seed 0 alone: A far better
        a, b = correctness(400, a_only, b_only)
        runs += [make_run("batchnorm", a, seed), make_run("baseline", b, seed)]
    claim, pairs = one_claim(runs, better("batchnorm", "baseline"))
    assert pairs.iloc[0]["method"] == CROSSED_METHOD and claim["seeds"] == 3
    assert claim["effect"] == pytest.approx((60 - 20 - 20) / 3 / 400)  # every seed, not seed 0's 0.15
    correct = {model: np.stack([r.predictions["true"] == r.predictions["predicted"] for r in runs
                                if r.model == model]) for model in ("batchnorm", "baseline")}  # fmt: skip
    expected = compare_accuracy(correct["batchnorm"], correct["baseline"], 0.95)
    assert (claim["ci_low"], claim["p_value"]) == pytest.approx((expected["ci_low"], expected["p_value"]))


def write_run_files(root, run, index):
    folder = root / f"run{index}"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(run.metrics))
    run.predictions.to_csv(folder / "predictions.csv", index=False)
    run.history.to_csv(folder / "history.csv", index=False)
    return folder / "metrics.json", folder / "predictions.csv", folder / "history.csv"


def test_runs_are_grouped_by_what_metrics_json_says(tmp_path):
    accuracies = {"baseline": 10, "batchnorm": 40, "dropout": 70}
    runs = [
        make_run(model, correctness(100, 0, 0, both)[0], seed)
        for model, both in accuracies.items()
        for seed in (0, 1)
    ]
    files = [write_run_files(tmp_path, run, i) for i, run in enumerate(runs)]
    random.Random(3).shuffle(files)
    loaded = load_runs(*map(list, zip(*files, strict=True)))
    assert [(run.model, run.seed) for run in loaded] == sorted((run.model, run.seed) for run in runs)
    for run in loaded:
        assert (run.predictions["true"] == run.predictions["predicted"]).sum() == accuracies[run.model]


def test_different_test_images_are_refused(tmp_path):
    first = make_run("baseline", correctness(50, 0, 0)[0])
    second = make_run("batchnorm", correctness(50, 0, 0)[0])
    second.predictions.loc[3, "file"] = "val/n03/other.JPEG"
    files = [write_run_files(tmp_path, run, i) for i, run in enumerate([first, second])]
    with pytest.raises(ValueError, match="different test images") as error:
        load_runs(*map(list, zip(*files, strict=True)))
    assert str(files[0][1]) in str(error.value) and str(files[1][1]) in str(error.value)


def study_runs():
    a, b = correctness(400, 60, 5)
    runs = [
        make_run(model, a if model != "baseline" else b) for model in ("batchnorm", "baseline", "combined")
    ]
    runs += [make_run(RESNETS[0], a, pretrained=False), make_run(RESNETS[1], a)]
    statements = [
        better("batchnorm", "baseline", "batchnorm_beats_baseline"),
        statement("combined_is_best_cnn", "best_of", ["combined", "baseline", "dropout"]),
        equivalent(*reversed(RESNETS)),
        better("batchnorm", "baseline", "batchnorm_converges_faster", "epochs_to_95"),
        better("batchnorm", "baseline", "dropout_shrinks_gap", "best_epoch_gap"),
    ]
    return check_claims(runs, config(*statements), STUDY), runs


def test_writers_produce_csv_markdown_and_html(tmp_path):
    (claims, pairs), runs = study_runs()
    write_claims(claims, pairs, tmp_path / "claims.csv", tmp_path / "claims.md", tmp_path / "claims.html")
    written = pd.read_csv(tmp_path / "claims.csv")
    assert len(written) == len(pairs) and {"claim_verdict", "claim_text", "reported_difference"} <= set(
        written
    )
    markdown = (tmp_path / "claims.md").read_text()
    assert "Holm" in markdown and "never merely because p > 0.05" in markdown and "+13.8 pp" in markdown
    assert "<table" in (tmp_path / "claims.html").read_text()
    comparisons = pairwise_comparisons(runs, ["batchnorm", "baseline", "combined"], 0.95, 100, 0)
    write_comparisons(comparisons, tmp_path / "cmp.csv", tmp_path / "cmp.md", tmp_path / "cmp.html")
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 3
    assert "exact McNemar" in (tmp_path / "cmp.md").read_text()
    assert "< 1e-6" in (tmp_path / "cmp.md").read_text()
    assert "<table" in (tmp_path / "cmp.html").read_text()


def test_forest_plot_renders_inside_the_figure(tmp_path):
    (claims, pairs), _ = study_runs()
    write_claims(claims, pairs, tmp_path / "claims.csv", tmp_path / "claims.md", None)
    titles = plot_comparison_effects(tmp_path / "claims.csv", tmp_path / "forest.png")
    assert "95% interval" in titles[0] and "paired bootstrap" in titles[0]
    assert {"Test accuracy", "Train (evaluation mode) − validation accuracy gap at the best epoch"} <= set(
        titles
    )
    with Image.open(tmp_path / "forest.png") as image:
        assert image.width >= 800 and image.height >= 500
    figure = draw_comparison_effects(pd.read_csv(tmp_path / "claims.csv"))
    renderer = figure.canvas.get_renderer()
    figure.canvas.draw()
    width, height = figure.bbox.width, figure.bbox.height
    texts = [figure.get_suptitle() and figure._suptitle, *figure.legends]
    texts += [label for ax in figure.axes for label in (ax.title, *ax.get_yticklabels())]
    for artist in texts:
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, artist
    legend_labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "reported by the study" in legend_labels and "not applicable" in legend_labels


def test_an_unsettled_accuracy_claim_says_how_many_seeds_would_settle_it():
    rng = np.random.default_rng(0)
    runs = [
        make_run(model, rng.random(4000) < accuracy, seed)
        for seed in range(3)
        for model, accuracy in (("batchnorm", 0.66), ("baseline", 0.655))
    ]
    claim, pairs = one_claim(runs, better("batchnorm", "baseline"))
    assert claim["verdict"] == "not supported"
    correct = [np.stack([run.predictions["true"] == run.predictions["predicted"] for run in runs
                         if run.model == model]) for model in ("batchnorm", "baseline")]  # fmt: skip
    expected = seeds_to_settle(*correct, 0.6631 - 0.6203, alpha=0.05)  # the study's difference, not ours
    assert expected and claim["seeds_to_settle"] == f"≈ {expected} seeds"
    one_seed = [run for run in runs if run.seed == 0]
    assert one_claim(one_seed, better("batchnorm", "baseline"))[0]["seeds_to_settle"] == "—"


def test_history_effects_read_in_words_with_both_values():
    assert effect_in_words(9, "epochs_to_95", 2, 11, 0.7, 0.6) == "9 fewer epochs (2 vs 11)"
    assert effect_in_words(-3, "epochs_to_95", 8, 5, 0.7, 0.7) == "3 more epochs (8 vs 5)"
    faster_lower = effect_in_words(4, "epochs_to_95", 3, 7, 0.55, 0.62)
    assert (
        faster_lower.startswith("4 fewer epochs (3 vs 7), but to a lower plateau") and "55.0%" in faster_lower
    )
    gap = effect_in_words(0.268, "best_epoch_gap", -0.029, 0.239, 0.6, 0.6)
    assert gap == "gap 26.8 pp smaller (-2.9 vs +23.9 pp)"
    assert effect_in_words(0.05, "test_accuracy", 0.5, 0.45, 0.5, 0.5) is None


def test_the_claims_table_prints_the_margin_and_this_runs_interval_width(tmp_path):
    (claims, pairs), _ = study_runs()
    write_claims(claims, pairs, tmp_path / "claims.csv", tmp_path / "claims.md", None)
    markdown = (tmp_path / "claims.md").read_text()
    assert "equivalence margin ±2.0 pp" in markdown
    images = int(pairs.loc[pairs["measure"] == "test_accuracy", "n_images"].iloc[0])
    assert f"On this run's {images:,} test images the accuracy intervals are ±" in markdown


# ------------------------------------------------------------------ every column of both tables, by hand
def every_kind_of_claim():
    """Two seeds of batchnorm, baseline and both ResNets, one of combined and dropout; a claim of each
    kind: better on accuracy over seeds, best-of against a one-seed and a two-seed rival, equivalence over
    seeds, and two history measures (one with a spread across seeds, one without)."""
    rng = np.random.default_rng(11)
    difficulty = rng.random(400)

    def answers(level):
        return rng.random(400) < np.clip(level + 0.5 * difficulty - 0.25, 0, 1)

    answers_of = {
        ("batchnorm", 0): answers(0.66), ("batchnorm", 1): answers(0.64), ("baseline", 0): answers(0.6),
        ("baseline", 1): answers(0.63), ("combined", 0): answers(0.75), ("dropout", 0): answers(0.7),
        (RESNETS[0], 0): answers(0.8), (RESNETS[0], 1): answers(0.81), (RESNETS[1], 0): answers(0.8),
        (RESNETS[1], 1): answers(0.79),
    }  # fmt: skip
    histories = {("batchnorm", 0): history(3, 0.05), ("batchnorm", 1): history(4, 0.05),
                 ("baseline", 0): history(6, 0.2), ("baseline", 1): history(9, 0.2)}  # fmt: skip
    runs = [
        make_run(model, correct, seed, histories.get((model, seed)))
        for (model, seed), correct in answers_of.items()
    ]
    statements = [
        better("batchnorm", "baseline", "accuracy"),
        statement("best", "best_of", ["combined", "baseline", "dropout"]),
        equivalent(RESNETS[1], RESNETS[0]),
        better("batchnorm", "baseline", "faster", "epochs_to_95"),
        better("batchnorm", "baseline", "gap", "best_epoch_gap"),
    ]
    settings = config(*statements, resamples=400) | {"confidence": 0.9, "alpha": 0.1, "bootstrap_seed": 4}
    return runs, answers_of, settings


def test_every_pair_of_every_claim_against_the_statistics_it_rests_on():
    runs, answers_of, settings = every_kind_of_claim()
    claims, pairs = check_claims(runs, settings, STUDY)

    def seeds_of(model):
        return np.stack([answers_of[key] for key in sorted(answers_of) if key[0] == model])

    crossed = {pair: compare_accuracy(seeds_of(pair[0]), seeds_of(pair[1]), 0.9) for pair in
               [("batchnorm", "baseline"), ("combined", "baseline"), (RESNETS[1], RESNETS[0])]}  # fmt: skip
    one_seed = paired_accuracy(answers_of["combined", 0], answers_of["dropout", 0], 0.9, 400, 4)
    faster = t_across_seeds([3, 5], 0.9)
    family = [crossed["batchnorm", "baseline"]["p_value"], crossed["combined", "baseline"]["p_value"],
              one_seed["p_value"], faster[3], math.nan]  # fmt: skip
    p_holm = holm(family)
    assert list(pairs.columns) == PAIR_COLUMNS and list(claims.columns) == CLAIM_COLUMNS
    assert pairs["claim_id"].tolist() == ["accuracy", "best", "best", "small_gain", "faster", "gap"]
    assert pairs[["model_a", "model_b"]].to_numpy().tolist() == [
        ["batchnorm", "baseline"], ["combined", "baseline"], ["combined", "dropout"], [RESNETS[1], RESNETS[0]],
        ["batchnorm", "baseline"], ["batchnorm", "baseline"],
    ]  # fmt: skip
    assert pairs["method"].tolist() == [CROSSED_METHOD, CROSSED_METHOD, BOOTSTRAP_METHOD,
                                        "interval over seeds × test images", T_METHOD, T_METHOD]  # fmt: skip
    assert pairs["seeds"].tolist() == [2, 1, 1, 2, 2, 2]
    assert (pairs["confidence"] == 0.9).all() and (pairs["alpha"] == 0.1).all()
    assert pairs["margin"].iloc[3] == 0.02 and pairs["margin"].drop(index=3).isna().all()
    expected = {  # effect, low, high, p of each pair, straight from the statistics
        0: [crossed["batchnorm", "baseline"][key] for key in ("effect", "ci_low", "ci_high", "p_value")],
        1: [crossed["combined", "baseline"][key] for key in ("effect", "ci_low", "ci_high", "p_value")],
        2: [one_seed[key] for key in ("difference", "ci_low", "ci_high", "p_value")],
        3: [*(crossed[RESNETS[1], RESNETS[0]][key] for key in ("effect", "ci_low", "ci_high")), math.nan],
        4: list(faster),
        5: [pytest.approx(0.15), math.nan, math.nan, math.nan],  # the same gap saved by both seeds
    }
    for row, numbers in expected.items():
        assert pairs.loc[row, ["effect", "ci_low", "ci_high", "p_value"]].tolist() == pytest.approx(
            numbers, nan_ok=True
        ), row
    # the Holm family: every pair of a "better" or "best of" claim, the equivalence pair left out
    expected_holm = [p_holm[0], p_holm[1], p_holm[2], math.nan, p_holm[3], p_holm[4]]
    assert pairs["p_holm"].tolist() == pytest.approx(expected_holm, nan_ok=True)
    assert pairs["n_images"].tolist()[:4] == [400, 400, 400, 400] and pairs["n_images"][4:].isna().all()
    verdicts = [
        superiority_verdict(*pairs.loc[row, ["ci_low", "ci_high", "p_holm"]], 0.1) for row in (0, 1, 2, 4)
    ]
    verdicts.insert(
        3, equivalence_verdict(*pairs.loc[3, ["effect", "ci_low", "ci_high"]], 0.02, True, "2.0 pp")
    )
    verdicts.append(
        (NOT_SUPPORTED, "no test: every seed gave the same difference; the measured direction agrees")
    )
    assert list(zip(pairs["verdict"], pairs["reason"], strict=True)) == verdicts
    reported = STUDY["reported"]
    assert pairs["reported_difference"].tolist() == pytest.approx(
        [reported["batchnorm"]["test_accuracy"] - reported["baseline"]["test_accuracy"],
         reported["combined"]["test_accuracy"] - reported["baseline"]["test_accuracy"],
         math.nan, math.nan, math.nan, math.nan], nan_ok=True)  # fmt: skip
    # history measures: each model's own value and best validation accuracy, as means over the seeds
    assert pairs.loc[4, ["value_a", "value_b", "plateau_a", "plateau_b"]].tolist() == [3.5, 7.5, 0.6, 0.6]
    assert pairs.loc[5, ["value_a", "value_b"]].tolist() == pytest.approx([0.05, 0.2])
    assert pairs.loc[:3, ["value_a", "value_b", "plateau_a", "plateau_b"]].isna().all().all()

    assert claims["id"].tolist() == ["accuracy", "best", "small_gain", "faster", "gap"]
    assert claims["text"].tolist() == ["accuracy.", "best.", "small_gain.", "faster.", "gap."]
    assert claims["measure"].tolist() == ["test_accuracy"] * 3 + ["epochs_to_95", "best_epoch_gap"]
    assert claims["outcome"].tolist() == ["better", "best_of", "equivalent", "better", "better"]
    assert claims["models"].tolist()[1:3] == ["combined, baseline, dropout", f"{RESNETS[1]}, {RESNETS[0]}"]
    assert claims["margin"].iloc[2] == 0.02 and claims["margin"].drop(index=2).isna().all()
    assert claims["seeds"].tolist() == [2, 1, 2, 2, 2]
    weakest = 1 if pairs.loc[1, "effect"] < pairs.loc[2, "effect"] else 2
    for claim, row in zip(range(5), [0, weakest, 3, 4, 5], strict=True):
        columns = ["effect", "ci_low", "ci_high", "p_value", "p_holm", "seeds_to_settle", "value_a", "value_b",
                   "plateau_a", "plateau_b"]  # fmt: skip
        assert claims.loc[claim, columns].tolist() == pytest.approx(
            pairs.loc[row, columns].tolist(), nan_ok=True
        )
        if claim != 1:
            assert (
                claims.loc[claim, ["verdict", "reason"]].tolist()
                == pairs.loc[row, ["verdict", "reason"]].tolist()
            )


def test_seeds_to_settle_of_each_unsettled_accuracy_pair():
    """The study's reported difference as the target of a "better" pair; an equivalence pair is sized for
    its margin around no difference; a pair without a reported number, or with a one-seed model, has
    none."""
    runs, answers_of, settings = every_kind_of_claim()
    _, pairs = check_claims(runs, settings, STUDY)

    def seeds_of(model):
        return np.stack([answers_of[key] for key in sorted(answers_of) if key[0] == model])

    def words(seeds):
        return f"≈ {seeds} seeds" if seeds else "not with this test set"

    reported = STUDY["reported"]
    target = reported["batchnorm"]["test_accuracy"] - reported["baseline"]["test_accuracy"]
    expected = [
        words(seeds_to_settle(seeds_of("batchnorm"), seeds_of("baseline"), target, alpha=0.1)),
        "—",  # combined has one seed
        "—",  # dropout has no reported accuracy
        words(seeds_to_settle(seeds_of(RESNETS[1]), seeds_of(RESNETS[0]), 0.0, alpha=0.1, margin=0.02)),
        "—",
        "—",  # history measures
    ]
    settled = pairs["verdict"].isin(["supported", "contradicted"])
    expected = ["—" if done else text for text, done in zip(expected, settled, strict=True)]
    assert pairs["seeds_to_settle"].tolist() == expected
    assert expected[0] != "—" and expected[3] != "—"  # both kinds are exercised


def test_a_pair_without_shared_seeds_is_not_measured_and_says_so():
    runs = [make_run("batchnorm", correctness(100, 10, 0)[0], seed=0),
            make_run("baseline", correctness(100, 10, 0)[1], seed=1)]  # fmt: skip
    claims, pairs = check_claims(runs, config(better("batchnorm", "baseline")), {**STUDY, "reported": {}})
    pair = pairs.iloc[0]
    assert (pair["seeds"], pair["method"], pair["verdict"], pair["reason"]) == (
        0,
        "",
        "not supported",
        "not measured",
    )
    empty = ["effect", "ci_low", "ci_high", "p_value", "p_holm", "value_a", "value_b", "plateau_a", "plateau_b",
             "n_images", "reported_difference"]  # fmt: skip
    assert pairs.loc[0, empty].isna().all()
    assert claims.iloc[0]["reason"] == "not measured"


def test_a_study_without_reported_numbers_still_checks_its_claims():
    a, b = correctness(400, 80, 0)
    study = {key: value for key, value in STUDY.items() if key != "reported"}
    claim, pairs = check_claims([make_run("batchnorm", a), make_run("baseline", b)],
                                config(better("batchnorm", "baseline")), study)  # fmt: skip
    assert claim.iloc[0]["verdict"] == "supported" and math.isnan(pairs.iloc[0]["reported_difference"])


def test_one_seed_history_claims_say_which_way_the_measure_points():
    runs = [make_run("batchnorm", correctness(50, 0, 0)[0], hist=history(6)),
            make_run("baseline", correctness(50, 0, 0)[0], hist=history(4)),
            make_run("dropout", correctness(50, 0, 0)[0], hist=history(6))]  # fmt: skip
    statements = [better("batchnorm", "baseline", "slower", "epochs_to_95"),
                  better("batchnorm", "dropout", "same", "epochs_to_95")]  # fmt: skip
    claims, _ = check_claims(runs, config(*statements), STUDY)
    assert claims["reason"].tolist() == [
        f"{ONE_SEED}; the measured direction disagrees",
        f"{ONE_SEED}; the measured direction shows no difference",
    ]


def test_a_best_of_claim_names_its_weakest_pair_or_every_failing_one():
    n = 400
    best = correctness(n, 80, 0)[0]  # right on the first 280 images
    weak, weaker = correctness(n, 80, 0)[1], best.copy()
    weaker[240:280] = False  # right on 240: the closer rival
    claim, _ = one_claim([make_run("combined", best), make_run("baseline", weak), make_run("dropout", weaker)],
                         statement("best", "best_of", ["combined", "baseline", "dropout"]))  # fmt: skip
    assert claim["verdict"] == "supported"
    assert claim["reason"] == "supported against every other model; weakest pair combined vs dropout"
    rivals = [make_run("combined", best), make_run("baseline", best), make_run("dropout", ~best)]
    claims, pairs = check_claims(rivals, config(statement("best", "best_of", ["combined", "baseline", "dropout"])),
                                 STUDY)  # fmt: skip
    assert pairs["verdict"].tolist() == ["not supported", "supported"]
    assert claims.iloc[0]["reason"] == f"vs baseline: not supported ({pairs['reason'].iloc[0]})"
    two_failing = [make_run("combined", weak), make_run("baseline", best), make_run("dropout", best)]
    claims, pairs = check_claims(two_failing,
                                 config(statement("best", "best_of", ["combined", "baseline", "dropout"])), STUDY)  # fmt: skip
    assert claims.iloc[0]["reason"] == "; ".join(
        f"vs {rival}: contradicted ({reason})"
        for rival, reason in zip(["baseline", "dropout"], pairs["reason"], strict=True)
    )


def test_an_inapplicable_claim_keeps_what_was_measured_in_its_reasons():
    a, b = correctness(400, 80, 0)
    runs = [make_run(RESNETS[0], a, pretrained=False), make_run(RESNETS[1], b, pretrained=False),
            make_run("combined", b)]  # fmt: skip
    claims, pairs = check_claims(runs, config(better(RESNETS[0], "combined"), better(RESNETS[0], "dropout", "x"),
                                              equivalent(RESNETS[1], RESNETS[0])), STUDY)  # fmt: skip
    measured = superiority_verdict(*pairs.loc[0, ["ci_low", "ci_high", "p_holm"]], 0.05)
    assert pairs.loc[0, "reason"] == (
        f"{RESNETS[0]} not pretrained (random init); as measured: {measured[0]} ({measured[1]})"
    )
    assert claims.loc[0, "reason"] == f"{RESNETS[0]} not pretrained (random init); as measured: {measured[0]}"
    assert (
        claims.loc[1, "reason"]
        == f"dropout was not trained in this run; {RESNETS[0]} not pretrained (random init)"
    )
    assert claims.loc[2, "reason"].startswith(f"{RESNETS[1]} and {RESNETS[0]} not pretrained (random init); ")
    assert (claims["verdict"] == "not applicable").all() and (pairs["verdict"] == "not applicable").all()


def test_the_data_premise_in_words():
    a, b = correctness(100, 10, 0)
    on_study = [make_run("batchnorm", a), make_run("baseline", b)]
    assert data_premise(on_study, STUDY) == "This run used the study's data (archive md5 e793b78c…, 160 px)."
    other = [make_run("batchnorm", a), make_run("baseline", b, md5="1234567890" * 3 + "ab", image_size=64)]
    assert data_premise(other, STUDY) == (
        "**This run did not use the study's data**: the claims are about the archive with md5 e793b78c… at "
        "160 px; this run used imagenette-demo (md5 12345678…) at 64 px. Every claim is therefore *not "
        "applicable*; the measured numbers are shown, with the verdict they would give."
    )


def test_effects_in_words_at_their_edges():
    assert effect_in_words(0, "epochs_to_95", 5, 5, 0.7, 0.7) == "as many epochs (5)"
    assert effect_in_words(0.04, "epochs_to_95", 5, 5.04, 0.6, 0.7) == "0 fewer epochs (5 vs 5.04), but to a " \
        "lower plateau (best validation accuracy 60.0% vs 70.0%)"  # fmt: skip
    assert effect_in_words(2.26, "epochs_to_95", 3, 5.26, 0.7, 0.7) == "2.3 fewer epochs (3 vs 5.26)"
    assert effect_in_words(1, "epochs_to_95", 3, 4, 0.7, 0.7) == "1 fewer epochs (3 vs 4)"  # same plateau
    assert effect_in_words(-1, "epochs_to_95", 4, 3, 0.6, 0.7) == "1 more epochs (4 vs 3)"  # slower: no "but"
    assert effect_in_words(0.5, "epochs_to_95", 3, 3.5, 0.6, 0.7).endswith("(3 vs 3.5), but to a lower plateau "
                                                                             "(best validation accuracy 60.0% vs 70.0%)")  # fmt: skip
    assert (
        effect_in_words(-0.03, "best_epoch_gap", 0.05, 0.02, 0.6, 0.6)
        == "gap 3.0 pp larger (+5.0 vs +2.0 pp)"
    )
    assert effect_in_words(math.nan, "epochs_to_95", 3, 4, 0.6, 0.7) is None
    assert effect_in_words(1, "epochs_to_95", math.nan, 4, 0.6, 0.7) is None


def test_effects_are_formatted_in_their_unit():
    assert [format_effect(v, "epochs_to_95") for v in (3.46, 2, None, math.nan)] == [
        "3.5 epochs",
        "2 epochs",
        "—",
        "—",
    ]
    assert format_effect(3.46, "epochs_to_95", signed=True) == "+3.5 epochs"
    assert [format_effect(v, "test_accuracy", signed=True) for v in (0.0123, -0.02)] == ["+1.2 pp", "-2.0 pp"]
    assert format_effect(0.0123, "best_epoch_gap") == "1.2 pp"


def test_epochs_to_95_counts_an_epoch_exactly_at_the_threshold():
    assert epochs_to_95(pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.95, 1.0]})) == 2


def test_load_runs_refuses_lists_of_different_lengths_and_a_run_twice(tmp_path):
    runs = [make_run("baseline", correctness(20, 0, 0)[0], seed) for seed in (0, 0)]
    files = [write_run_files(tmp_path, run, i) for i, run in enumerate(runs)]
    metrics, predictions, histories = map(list, zip(*files, strict=True))
    with pytest.raises(
        ValueError, match="^load_runs needs as many predictions and histories as metrics files$"
    ):
        load_runs(metrics, predictions, histories[:1])
    with pytest.raises(ValueError, match=f"^{files[1][0]}: baseline with seed 0 appears twice$"):
        load_runs(metrics, predictions, histories)
    (loaded,) = load_runs(metrics[:1], predictions[:1], histories[:1])
    assert loaded.metrics == runs[0].metrics and loaded.source == str(predictions[0])
    pd.testing.assert_frame_equal(loaded.history, runs[0].history)


def test_pairwise_rows_against_the_statistics_they_come_from():
    rng = np.random.default_rng(5)
    answers = {
        (m, s): rng.random(300) < p for m, p in (("batchnorm", 0.7), ("baseline", 0.6)) for s in (0, 1)
    }
    runs = [make_run(model, correct, seed) for (model, seed), correct in answers.items()]
    frame = pairwise_comparisons(runs, ["batchnorm", "baseline"], 0.9, 250, 7)
    assert frame[["model_a", "model_b"]].drop_duplicates().to_numpy().tolist() == [["batchnorm", "baseline"]]
    for seed in (0, 1):
        row = frame[frame["seed"] == seed].iloc[0]
        expected = paired_accuracy(answers["batchnorm", seed], answers["baseline", seed], 0.9, 250, 7)
        assert row[list(expected)].tolist() == pytest.approx(list(expected.values()))
    crossed = compare_accuracy(
        np.stack([answers["batchnorm", s] for s in (0, 1)]),
        np.stack([answers["baseline", s] for s in (0, 1)]),
        0.9,
    )
    mean = frame[frame["seed"] == "mean"].iloc[0]
    assert mean[["difference", "ci_low", "ci_high", "p_value"]].tolist() == pytest.approx(
        [crossed[key] for key in ("effect", "ci_low", "ci_high", "p_value")]
    )
    assert mean[["accuracy_a", "accuracy_b"]].tolist() == pytest.approx(
        [
            np.mean([answers["batchnorm", s] for s in (0, 1)]),
            np.mean([answers["baseline", s] for s in (0, 1)]),
        ]
    )
    alone = pairwise_comparisons(runs, ["batchnorm", "dropout"], 0.9, 250, 7)  # nothing to pair
    assert alone.empty and list(alone.columns) == COMPARISON_COLUMNS


def test_as_many_epochs_says_nothing_of_plateaus():
    assert effect_in_words(0, "epochs_to_95", 5, 5, 0.6, 0.7) == "as many epochs (5)"


def test_a_claim_whose_first_model_was_not_trained_is_not_measured():
    a, _ = correctness(100, 10, 0)
    claims, pairs = check_claims([make_run("baseline", a)], config(better("batchnorm", "baseline")), STUDY)
    assert pairs.loc[0, ["verdict", "seeds_to_settle"]].tolist() == ["not applicable", "—"]
    assert claims.loc[0, "reason"] == "batchnorm was not trained in this run"
    _, pairs = check_claims([make_run(RESNETS[0], a)], config(equivalent(RESNETS[1], RESNETS[0])), STUDY)
    assert pairs.loc[0, "method"] == ""  # nothing measured: no method, even for an interval-only claim


def test_an_equivalence_claim_on_a_history_measure():
    """In the measure's own unit (epochs), and with one seed no interval to judge it by."""
    runs = []
    for seed, (own, other) in enumerate([(5, 5), (5, 6), (6, 6)]):
        runs += [make_run("batchnorm", correctness(50, 0, 0)[0], seed, history(own)),
                 make_run("baseline", correctness(50, 0, 0)[0], seed, history(other))]  # fmt: skip
    same_speed = statement("same", "equivalent", ["batchnorm", "baseline"], "epochs_to_95", margin=2)
    claim, pairs = one_claim(runs, same_speed)
    assert pairs.loc[0, "method"] == "t-interval across seeds" and math.isnan(pairs.loc[0, "p_value"])
    assert (claim["verdict"], claim["reason"]) == ("supported", "the interval lies inside ±2 epochs")
    claim, pairs = one_claim([run for run in runs if run.seed == 1], same_speed)
    assert pairs.loc[0, "method"] == ONE_SEED
    assert (claim["verdict"], claim["reason"]) == (
        "not supported",
        f"{ONE_SEED}; the measured direction agrees",
    )


def test_a_settled_accuracy_claim_needs_no_more_seeds():
    runs = []
    for seed in (0, 1):
        a, b = correctness(400, 80, 0)
        runs += [make_run("batchnorm", a, seed), make_run("baseline", b, seed)]
    claim, _ = one_claim(runs, better("batchnorm", "baseline"))
    assert (claim["verdict"], claim["seeds_to_settle"]) == ("supported", "—")
