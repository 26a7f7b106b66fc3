"""Paired comparisons between trained models, and a verdict on each of the study's claims.

Every model of one workflow run predicts the same test images, so models are compared image by image
(paired), which is far more sensitive than comparing two accuracies. The rules that turn numbers into
verdicts are written out in ``_rules`` and printed under the table, so a reader can check every verdict.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cnnstudy.analysis.stats import (
    CONTRADICTED,
    NOT_SUPPORTED,
    SUPPORTED,
    compare_accuracy,
    equivalence_verdict,
    holm,
    paired_accuracy,
    seeds_to_settle,
    superiority_verdict,
    t_across_seeds,
)
from cnnstudy.analysis.tables import comparable_with_study, on_study_data

NOT_APPLICABLE = "not applicable"
OTHER_DATA = "not the study's data"
BOOTSTRAP_METHOD = "paired bootstrap over images + exact McNemar"
T_METHOD = "t-test across seeds"
CROSSED_METHOD = "seeds × test images (variance components, Welch t)"
ONE_SEED = "one seed: no test"
# equivalence claims are judged by their interval alone, so their method names no test
INTERVAL_ONLY = {
    BOOTSTRAP_METHOD: "paired bootstrap over images",
    T_METHOD: "t-interval across seeds",
    CROSSED_METHOD: "interval over seeds × test images",
}
TESTED_OUTCOMES = ("better", "best_of")  # the Holm family; "equivalent" is judged by its interval
ACCURACY_MEASURE = "test_accuracy"
COMPARISON_COLUMNS = [
    "model_a", "model_b", "seed", "n_images", "accuracy_a", "accuracy_b", "difference", "ci_low", "ci_high",
    "a_only_correct", "b_only_correct", "p_mcnemar", "p_value", "method",
]  # fmt: skip
PAIR_COLUMNS = [
    "claim_id", "outcome", "margin", "model_a", "model_b", "measure", "seeds", "method", "confidence",
    "alpha", "effect", "ci_low", "ci_high", "p_value", "p_holm", "verdict", "reason", "reported_difference",
    "seeds_to_settle", "value_a", "value_b", "plateau_a", "plateau_b", "n_images",
]  # fmt: skip
CLAIM_COLUMNS = [
    "id", "text", "measure", "outcome", "models", "margin", "effect", "ci_low", "ci_high", "p_value",
    "p_holm", "seeds", "verdict", "reason", "seeds_to_settle", "value_a", "value_b", "plateau_a", "plateau_b",
]  # fmt: skip


@dataclass
class Run:
    """One trained run: one model with one seed, and what evaluation and training wrote for it."""

    model: str
    seed: int
    metrics: dict
    predictions: pd.DataFrame
    history: pd.DataFrame
    source: str = ""  # the predictions file, named when test-image lists disagree


def _check_same_images(run, reference):
    if run.predictions["file"].tolist() != reference.predictions["file"].tolist():
        raise ValueError(
            f"{run.source or run.model} and {reference.source or reference.model} list different test "
            "images (or a different order): paired comparisons need every model scored on the same images"
        )


def load_runs(metrics_paths, predictions_paths, history_paths):
    """Read every run; the i-th entries of the three lists belong to one run, in any order of runs.

    Which model and seed a run is comes from its metrics.json, never from its place in the lists, so a
    reordered ``expand`` cannot swap two models. Returns the runs sorted by model, then seed.
    """
    if not len(metrics_paths) == len(predictions_paths) == len(history_paths):
        raise ValueError("load_runs needs as many predictions and histories as metrics files")
    runs = {}
    for metrics_path, predictions_path, history_path in zip(
        metrics_paths, predictions_paths, history_paths, strict=True
    ):
        metrics = json.loads(Path(metrics_path).read_text())
        run = Run(
            model=metrics["model"],
            seed=int(metrics["seed"]),
            metrics=metrics,
            predictions=pd.read_csv(predictions_path),
            history=pd.read_csv(history_path),
            source=str(predictions_path),
        )
        if (run.model, run.seed) in runs:
            raise ValueError(f"{metrics_path}: {run.model} with seed {run.seed} appears twice")
        if runs:
            _check_same_images(run, next(iter(runs.values())))
        runs[run.model, run.seed] = run
    return [runs[key] for key in sorted(runs)]


def _by_model(runs):
    grouped = {}
    for run in runs:
        grouped.setdefault(run.model, {})[run.seed] = run
    return grouped


def epochs_to_95(history):
    """First epoch reaching 95 % of the run's best validation accuracy: how fast it gets near its best."""
    threshold = 0.95 * history["val_accuracy"].max()
    return float(history.loc[history["val_accuracy"] >= threshold, "epoch"].iloc[0])


def best_epoch_gap(history):
    """Training minus validation accuracy at the best-validation epoch (the weights the run keeps): how
    much the selected model overfits. The training accuracy is the one taken in evaluation mode on a fixed
    subset: the running one is lowered by dropout and augmentation by construction. The selected epoch,
    not the last: runs stopped early would be compared at different lengths."""
    best = history.loc[history["val_accuracy"].idxmax()]  # the first epoch at the best, as training keeps
    return float(best["train_eval_accuracy"] - best["val_accuracy"])


HISTORY_MEASURES = {"epochs_to_95": epochs_to_95, "best_epoch_gap": best_epoch_gap}  # both: lower is better
MEASURE_NAMES = {
    "test_accuracy": "test accuracy",
    "epochs_to_95": "epochs to 95 % of the best validation accuracy",
    "best_epoch_gap": "train (evaluation mode) − validation gap at the best epoch",
}


def _correct(run):
    return (run.predictions["true"] == run.predictions["predicted"]).to_numpy()


def _accuracy_rows(model_a, model_b, runs_a, runs_b, confidence, resamples, seed):
    """One row per seed both models have (image-paired), plus a "mean" row over every seed of each when
    either has two or more: the per-seed rows see only the test images' variation, the "mean" row both
    the seeds' and the test images' (``stats.compare_accuracy``; seeds are not paired across models)."""
    rows = []
    for run_seed in sorted(set(runs_a) & set(runs_b)):
        _check_same_images(runs_a[run_seed], runs_b[run_seed])
        compared = paired_accuracy(
            _correct(runs_a[run_seed]), _correct(runs_b[run_seed]), confidence, resamples, seed
        )
        rows.append(
            {"model_a": model_a, "model_b": model_b, "seed": run_seed, **compared, "method": BOOTSTRAP_METHOD}
        )
    if max(len(runs_a), len(runs_b)) >= 2:
        correct_a, correct_b = _correct_by_seed(runs_a, runs_b)
        compared = compare_accuracy(correct_a, correct_b, confidence)
        across_seeds = {
            "model_a": model_a,
            "model_b": model_b,
            "seed": "mean",
            "n_images": compared["n_images"],
            "accuracy_a": correct_a.mean(),
            "accuracy_b": correct_b.mean(),
            "difference": compared["effect"],
            "ci_low": compared["ci_low"],
            "ci_high": compared["ci_high"],
            "p_value": compared["p_value"],
            "method": CROSSED_METHOD,
        }
        rows.append(across_seeds)  # the per-image counts and McNemar p have no across-seeds value: NaN
    return rows


def _correct_by_seed(runs_a, runs_b):
    """Per-image correctness of every seed, shaped (seeds, images), for both models."""
    reference = next(iter(runs_a.values()))
    for run in [*runs_a.values(), *runs_b.values()]:
        _check_same_images(run, reference)
    return tuple(np.stack([_correct(runs[s]) for s in sorted(runs)]) for runs in (runs_a, runs_b))


def pairwise_comparisons(runs, models, confidence, resamples, seed):
    """Every pair (A, B) of ``models`` that were trained, A earlier in ``models``; difference = A − B."""
    grouped = _by_model(runs)
    present = [model for model in models if model in grouped]
    rows = []
    for i, model_a in enumerate(present):
        for model_b in present[i + 1 :]:
            rows += _accuracy_rows(
                model_a, model_b, grouped[model_a], grouped[model_b], confidence, resamples, seed
            )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _measure_pair(measure, runs_a, runs_b, settings):
    """Effect (positive = the first model is better), its interval, p-value and the method used."""
    seeds = sorted(set(runs_a) & set(runs_b))
    empty = dict(
        seeds=len(seeds), method="", effect=math.nan, ci_low=math.nan, ci_high=math.nan, p_value=math.nan,
        value_a=math.nan, value_b=math.nan, plateau_a=math.nan, plateau_b=math.nan, n_images=math.nan,
    )  # fmt: skip
    if not seeds:
        return empty
    if measure == ACCURACY_MEASURE:
        rows = _accuracy_rows("a", "b", runs_a, runs_b, *settings)
        row = rows[-1]  # the across-seeds row when there are several seeds, else the one seed's row
        measured = {
            "effect": row["difference"],
            **{key: row[key] for key in ("method", "ci_low", "ci_high", "p_value", "n_images")},
        }
        return {**empty, **measured}
    value = HISTORY_MEASURES[measure]
    effects = [value(runs_b[s].history) - value(runs_a[s].history) for s in seeds]  # lower is better
    # both models' own values, and the best validation accuracy each reached, for the table's words
    empty |= {
        f"{key}_{side}": float(np.mean([measure_of(runs[s].history) for s in seeds]))
        for side, runs in (("a", runs_a), ("b", runs_b))
        for key, measure_of in (("value", value), ("plateau", lambda history: history["val_accuracy"].max()))
    }
    if len(seeds) == 1:
        return {**empty, "method": ONE_SEED, "effect": effects[0]}
    mean, low, high, p = t_across_seeds(effects, settings[0])
    return {**empty, "method": T_METHOD, "effect": mean, "ci_low": low, "ci_high": high, "p_value": p}


def _claim_pairs(claim):
    first, *others = claim["models"]
    return [(first, other) for other in others]


def _direction(effect):
    return "agrees" if effect > 0 else "disagrees" if effect < 0 else "shows no difference"


def _pair_verdict(pair, claim):
    """Verdict and reason for one pair; an untested pair is never more than "not supported"."""
    if math.isnan(pair["effect"]):
        return NOT_SUPPORTED, "not measured"
    if math.isnan(pair["ci_low"]) or (claim["outcome"] in TESTED_OUTCOMES and math.isnan(pair["p_holm"])):
        prefix = ONE_SEED if pair["method"] == ONE_SEED else "no test: every seed gave the same difference"
        return NOT_SUPPORTED, f"{prefix}; the measured direction {_direction(pair['effect'])}"
    if claim["outcome"] == "equivalent":
        margin = claim["margin"]
        margin_text = format_effect(margin, claim["measure"])
        effect, low, high = pair["effect"], pair["ci_low"], pair["ci_high"]
        return equivalence_verdict(effect, low, high, margin, claim.get("non_negative", False), margin_text)
    return superiority_verdict(pair["ci_low"], pair["ci_high"], pair["p_holm"], pair["alpha"])


def _seeds_to_settle(pair, claim, grouped):
    """ "≈ N seeds" for an unsettled accuracy claim: seeds per model that would give 80 % power to detect
    the difference the study reported (an equivalence claim: to fit its interval inside the margin), from
    this run's own seed and test-image variation; "not with this test set" when the test images' part
    alone is too wide; "—" when settled, or not estimable (a model with one seed, no reported number)."""
    if pair["measure"] != ACCURACY_MEASURE or pair["verdict"] in (SUPPORTED, CONTRADICTED):
        return "—"
    runs_a, runs_b = grouped.get(pair["model_a"], {}), grouped.get(pair["model_b"], {})
    target, margin = pair["reported_difference"], None
    if claim["outcome"] == "equivalent":
        target, margin = (0.0 if math.isnan(target) else target), claim["margin"]
    if min(len(runs_a), len(runs_b)) < 2 or math.isnan(target):
        return "—"
    seeds = seeds_to_settle(*_correct_by_seed(runs_a, runs_b), target, alpha=pair["alpha"], margin=margin)
    return f"≈ {seeds} seeds" if seeds else "not with this test set"


def _not_applicable(claim, grouped, runs, study):
    """Why the study's claim cannot be checked with these runs (empty: it can)."""
    reasons = [f"{model} was not trained in this run" for model in claim["models"] if model not in grouped]
    if not comparable_with_study([run.metrics for run in runs], study):
        reasons.append(OTHER_DATA)
    untrained = [
        model
        for model in claim["models"]
        if any(run.metrics.get("pretrained") is False for run in grouped.get(model, {}).values())
    ]
    if untrained:
        reasons.append(f"{' and '.join(untrained)} not pretrained (random init)")
    return reasons


def data_premise(runs, study):
    """One sentence on whether the runs used the study's data, for the table's introduction."""
    foreign = [run.metrics for run in runs if not on_study_data(run.metrics, study)]
    if not foreign:
        return f"This run used the study's data (archive md5 {study['dataset_md5'][:8]}…, {study['image_size']} px)."
    used = foreign[0]
    return (
        f"**This run did not use the study's data**: the claims are about the archive with md5 "
        f"{study['dataset_md5'][:8]}… at {study['image_size']} px; this run used {used.get('dataset')} "
        f"(md5 {str(used.get('archive_md5'))[:8]}…) at {used.get('image_size')} px. Every claim is therefore "
        "*not applicable*; the measured numbers are shown, with the verdict they would give."
    )


def _reported_difference(claim, model_a, model_b, reported):
    if claim["measure"] != ACCURACY_MEASURE or model_a not in reported or model_b not in reported:
        return math.nan
    return reported[model_a]["test_accuracy"] - reported[model_b]["test_accuracy"]


def _claim_row(claim, pairs, inapplicable):
    """Combine a claim's pairs: best_of needs every pair, and is as weak as its weakest pair."""
    weakest = (
        pairs.iloc[int(np.nanargmin(pairs["effect"]))] if pairs["effect"].notna().any() else pairs.iloc[0]
    )
    verdicts = set(pairs["verdict"])
    verdict = (
        SUPPORTED if verdicts == {SUPPORTED} else CONTRADICTED if CONTRADICTED in verdicts else NOT_SUPPORTED
    )
    if len(pairs) == 1:
        reason = pairs["reason"].iloc[0]
    elif verdict == SUPPORTED:
        reason = (
            f"supported against every other model; weakest pair {weakest['model_a']} vs {weakest['model_b']}"
        )
    else:
        failing = pairs[pairs["verdict"] != SUPPORTED]
        reason = "; ".join(f"vs {row.model_b}: {row.verdict} ({row.reason})" for row in failing.itertuples())
    if inapplicable:  # the measured reasons stay in the pairs' rows
        measured = f"; as measured: {verdict}" if pairs["effect"].notna().all() else ""
        verdict, reason = NOT_APPLICABLE, "; ".join(inapplicable) + measured
    return {
        "id": claim["id"],
        "text": claim["text"],
        "measure": claim["measure"],
        "outcome": claim["outcome"],
        "models": ", ".join(claim["models"]),
        "margin": claim.get("margin", math.nan),
        "effect": weakest["effect"],
        "ci_low": weakest["ci_low"],
        "ci_high": weakest["ci_high"],
        # the weakest pair's own numbers, never one pair's effect beside another pair's p
        "p_value": weakest["p_value"],
        "p_holm": weakest["p_holm"],
        "seeds": int(pairs["seeds"].min()),
        "verdict": verdict,
        "reason": reason,
        "seeds_to_settle": weakest["seeds_to_settle"],
        **{key: weakest[key] for key in ("value_a", "value_b", "plateau_a", "plateau_b")},
    }


def check_claims(runs, claims_config, study_config):
    """Verdict on every claim of ``claims_config["statements"]``; returns (claims frame, pairs frame)."""
    grouped = _by_model(runs)
    confidence = claims_config["confidence"]
    settings = (confidence, claims_config["bootstrap_resamples"], claims_config["bootstrap_seed"])
    reported = study_config.get("reported", {})
    statements = claims_config["statements"]
    rows = []
    for claim in statements:
        for model_a, model_b in _claim_pairs(claim):
            runs_a, runs_b = grouped.get(model_a, {}), grouped.get(model_b, {})
            measured = _measure_pair(claim["measure"], runs_a, runs_b, settings)
            if claim["outcome"] not in TESTED_OUTCOMES:
                interval_only = INTERVAL_ONLY.get(measured["method"], measured["method"])
                measured.update(p_value=math.nan, method=interval_only)
            rows.append(
                {
                    **measured,
                    "claim_id": claim["id"],
                    "outcome": claim["outcome"],
                    "margin": claim.get("margin", math.nan),
                    "model_a": model_a,
                    "model_b": model_b,
                    "measure": claim["measure"],
                    "confidence": confidence,
                    "alpha": claims_config["alpha"],
                    "reported_difference": _reported_difference(claim, model_a, model_b, reported),
                }
            )
    pairs = pd.DataFrame(rows).reindex(columns=PAIR_COLUMNS)
    family = pairs["outcome"].isin(TESTED_OUTCOMES).to_numpy()
    pairs["p_holm"] = math.nan
    pairs.loc[family, "p_holm"] = holm(pairs.loc[family, "p_value"])
    pairs[["verdict", "reason"]] = [
        _pair_verdict(pair, claim) for pair, claim in _with_claims(pairs, statements)
    ]
    pairs["seeds_to_settle"] = [
        _seeds_to_settle(pair, claim, grouped) for pair, claim in _with_claims(pairs, statements)
    ]
    claims = []
    for claim in statements:
        mask = pairs["claim_id"] == claim["id"]
        inapplicable = _not_applicable(claim, grouped, runs, study_config)
        claims.append(_claim_row(claim, pairs[mask], inapplicable))
        if inapplicable:
            measured = pairs.loc[mask, "verdict"] + " (" + pairs.loc[mask, "reason"] + ")"
            pairs.loc[mask, "reason"] = "; ".join(inapplicable) + "; as measured: " + measured
            pairs.loc[mask, "verdict"] = NOT_APPLICABLE
    return pd.DataFrame(claims, columns=CLAIM_COLUMNS), pairs


def _with_claims(pairs, statements):
    by_id = {claim["id"]: claim for claim in statements}
    return [(pair, by_id[pair["claim_id"]]) for _, pair in pairs.iterrows()]


def effect_in_words(effect, measure, value_a, value_b, plateau_a, plateau_b):
    """A history measure's effect as a reader says it, with both values: "9 fewer epochs (2 vs 11)",
    "gap 26.8 pp smaller (−2.9 vs 23.9 pp)", and whether a faster model converged to a lower plateau.
    None for the test accuracy (its signed difference reads as it is)."""
    if measure == ACCURACY_MEASURE or math.isnan(effect) or math.isnan(value_a):
        return None
    if measure == "epochs_to_95":
        size = f"{abs(round(effect, 1)):g} {'fewer' if effect > 0 else 'more'} epochs"
        words = f"{size} ({value_a:g} vs {value_b:g})" if effect else f"as many epochs ({value_a:g})"
        if effect > 0 and plateau_a < plateau_b:
            words += f", but to a lower plateau (best validation accuracy {plateau_a:.1%} vs {plateau_b:.1%})"
        return words
    size = f"gap {abs(100 * effect):.1f} pp {'smaller' if effect > 0 else 'larger'}"
    return f"{size} ({100 * value_a:+.1f} vs {100 * value_b:+.1f} pp)"


def format_effect(value, measure, signed=False):
    """Accuracy and gaps in percentage points, epochs in epochs."""
    if value is None or math.isnan(value):
        return "—"
    sign = "+" if signed else ""
    if measure == "epochs_to_95":
        return f"{round(value, 1):{sign}g} epochs"
    return f"{100 * value:{sign}.1f} pp"
