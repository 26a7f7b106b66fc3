"""The claims' tables for people: paired comparisons and verdicts as CSV, Markdown and HTML, with the
rules that produced each verdict written under the table."""

import math

import pandas as pd

from cnnstudy.claims import ACCURACY_MEASURE, BOOTSTRAP_METHOD, MEASURE_NAMES, T_METHOD, format_effect
from cnnstudy.files import atomic_path
from cnnstudy.rendering import write_table
from cnnstudy.stats import format_p


def _interval(low, high, measure):
    if math.isnan(low) or math.isnan(high):
        return "—"
    return f"[{format_effect(low, measure, signed=True)}, {format_effect(high, measure, signed=True)}]"


def write_comparisons(frame, csv_path, md_path, html_path):
    """The pairwise table as CSV (all digits) and as Markdown/HTML (differences in percentage points)."""
    with atomic_path(csv_path) as temporary:
        frame.to_csv(temporary, index=False)
    display = pd.DataFrame(
        {
            "Model A": frame["model_a"],
            "Model B": frame["model_b"],
            "Seed": frame["seed"].astype(str),
            "Images": frame["n_images"].map(lambda n: f"{int(n):,}"),
            "Accuracy A": frame["accuracy_a"].map(lambda v: f"{v:.2%}"),
            "Accuracy B": frame["accuracy_b"].map(lambda v: f"{v:.2%}"),
            "A − B": frame["difference"].map(lambda v: format_effect(v, ACCURACY_MEASURE, signed=True)),
            "Interval": [
                _interval(lo, hi, ACCURACY_MEASURE)
                for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)
            ],
            "Only A right": frame["a_only_correct"].map(lambda v: "—" if pd.isna(v) else f"{int(v):,}"),
            "Only B right": frame["b_only_correct"].map(lambda v: "—" if pd.isna(v) else f"{int(v):,}"),
            "p": frame["p_value"].map(format_p),
            "Method": frame["method"],
        }
    )
    notes = [
        f"Per seed: {BOOTSTRAP_METHOD}. Both models predict the same test images, so the interval comes "
        "from resampling images with both answers kept together (percentile bootstrap), and the p-value "
        "from the images only one of the two got right (exact two-sided binomial test, p = 0.5).",
        f"Seed *mean* (only with two or more seeds): {T_METHOD}: the mean of the per-seed differences, its "
        "t-interval and a one-sample t-test against 0; this one includes seed-to-seed variation.",
        "p-values here are not corrected for the number of pairs; the claims table applies Holm's "
        "correction.",
    ]
    title = "Paired comparisons between models on the same test images"
    write_table(display, md_path, html_path, title, notes=notes)


def _rules(confidence, alpha):
    level = f"{confidence:.0%}"
    return [
        f"*How each pair is tested.* Test accuracy with one seed: effect = accuracy difference, {level} "
        "interval = paired bootstrap over test images, p = exact McNemar test. With two or more seeds "
        f"(those both models have), for every measure: effect = mean per-seed difference, {level} "
        "t-interval and one-sample t-test across seeds. Training-history measures with one seed get no "
        "test and no interval. Effects are oriented so that positive means the first model is better "
        "(for epochs to 95 % of the best validation accuracy and for the final train − validation gap, "
        "lower is better).",
        "*Multiple tests.* Holm's correction across every tested pair of the *better* and *best of* claims "
        "(those marked not applicable included, so their as-measured verdicts mean the same); a pair counts "
        f"at Holm p < {alpha:g}.",
        "*Better:* supported if Holm p < α and the interval lies above 0; contradicted if Holm p < α and "
        "the interval lies below 0; otherwise not supported (also when there is no test). *Best of:* the "
        "first model against each other one; supported if every pair is, contradicted if any pair is; the "
        "table shows the weakest pair's effect and interval and the largest p and Holm p.",
        "*Equivalent* (a small difference) is judged by the interval alone, never merely because "
        "p > 0.05: supported if the interval lies inside ±margin (and, where the claim says the first "
        "model must not be worse, the effect is ≥ 0); contradicted if the interval lies entirely outside "
        "the margin, or entirely below 0 when the first model must not be worse; otherwise not supported.",
        "*Not applicable:* a model of the claim was not trained, the run did not use the study's archive "
        "and image size, or a ResNet-18 was not pretrained. The measured numbers are still shown, and the "
        "reason ends with the verdict they would give.",
        "*Why one seed rarely settles a claim.* On ~4,000 test images a 2-point accuracy difference has a "
        "95 % interval about ±1.5 pp wide (up to ±2 pp when the two models disagree on many images), and "
        "one seed says nothing about how much a retrained model would move: seed-to-seed variation is not "
        "measured at all. Differences of a few points between these CNNs need several seeds to be called.",
    ]


def write_claims(claims, pairs, csv_path, md_path, html_path, premise=""):
    """CSV: one row per pair with its claim's columns (enough to redraw the forest plot); Markdown/HTML: one
    row per claim, with the rules that produced each verdict written underneath."""
    claim_columns = claims.drop(columns=["measure", "outcome", "margin"]).add_prefix("claim_")
    joined = pairs.merge(claim_columns, on="claim_id", how="left")
    with atomic_path(csv_path) as temporary:
        joined.to_csv(temporary, index=False)
    confidence = pairs["confidence"].iloc[0] if len(pairs) else 0.95
    alpha = pairs["alpha"].iloc[0] if len(pairs) else 0.05
    display = pd.DataFrame(
        {
            "Claim": claims["text"],
            "Measure": claims["measure"].map(lambda measure: MEASURE_NAMES.get(measure, measure)),
            "Effect": [
                format_effect(v, m, signed=True)
                for v, m in zip(claims["effect"], claims["measure"], strict=True)
            ],
            f"{confidence:.0%} interval": [
                _interval(lo, hi, m)
                for lo, hi, m in zip(claims["ci_low"], claims["ci_high"], claims["measure"], strict=True)
            ],
            "p": claims["p_value"].map(format_p),
            "Holm p": claims["p_holm"].map(format_p),
            "Seeds": claims["seeds"].astype(str),
            "Verdict": claims["verdict"],
            "Reason": claims["reason"],
        }
    )
    intro = (
        "Each claim of the source study, checked against this run's models "
        f"(positive effect = the claim's first model is better). {premise}"
    )
    write_table(
        display,
        md_path,
        html_path,
        "The study's claims, checked",
        intro=intro,
        notes=_rules(confidence, alpha),
    )
