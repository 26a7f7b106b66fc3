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
    COMPARISON_COLUMNS,
    CROSSED_METHOD,
    ONE_SEED,
    T_METHOD,
    Run,
    best_epoch_gap,
    check_claims,
    data_premise,
    effect_in_words,
    epochs_to_95,
    load_runs,
    pairwise_comparisons,
)
from cnnstudy.analysis.claims_tables import write_claims, write_comparisons
from cnnstudy.analysis.stats import compare_accuracy, seeds_to_settle
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
