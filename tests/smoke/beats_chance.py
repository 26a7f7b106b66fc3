"""Every evaluated model of a finished run beats chance by a clear margin: `make demo`'s last check.

    python tests/smoke/beats_chance.py RESULTS_DIR

Reads each ``eval/<model>/predictions.csv`` (one row per test image) and computes the accuracy and its
95 % Wilson lower bound here, independently of the workflow's own statistics; chance is one over the
number of classes. A model whose lower bound is not above chance learnt nothing the test can see: on the
demo's data that means something is broken (a wrong label order, images swapped with their labels).
"""

import math
import sys
from pathlib import Path

import pandas as pd

Z = 1.959963984540054  # the two-sided 95 % normal quantile


def wilson_lower(correct, total, z=Z):
    share = correct / total
    centre = share + z * z / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return (centre - spread) / (1 + z * z / total)


def verdicts(results_dir):
    """(run, accuracy, lower bound, chance) for every evaluated run, worst lower bound first."""
    rows = []
    for path in sorted(Path(results_dir).glob("eval/*/predictions.csv")):
        predictions = pd.read_csv(path)
        correct = int((predictions["true"] == predictions["predicted"]).sum())
        total = len(predictions)
        chance = 1 / predictions["true"].nunique()
        rows.append((path.parent.name, correct / total, wilson_lower(correct, total), chance))
    return sorted(rows, key=lambda row: row[2] - row[3])


def main(results_dir):
    rows = verdicts(results_dir)
    if not rows:
        print(f"no eval/<model>/predictions.csv under {results_dir}: run the workflow first")
        return 1
    below = [row for row in rows if row[2] <= row[3]]
    for run, accuracy, lower, chance in rows:
        mark = "  <- not above chance" if lower <= chance else ""
        print(
            f"  {run:36} accuracy {accuracy:6.1%}, 95 % lower bound {lower:6.1%}, chance {chance:.1%}{mark}"
        )
    if below:
        print(f"{len(below)} of {len(rows)} models do not beat chance: the results above are not trustworthy")
        return 1
    print(f"Every one of the {len(rows)} models beats chance: its 95 % lower bound is above {rows[0][3]:.0%}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
