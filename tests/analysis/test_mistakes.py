"""The most confident mistakes, chosen from constructed predictions whose answer is known."""

import pandas as pd

from cnnstudy.analysis.mistakes import COLUMNS, confident_mistakes


def predictions(rows):
    return pd.DataFrame(rows, columns=["file", "true", "predicted", "confidence"])


def test_most_confident_first_and_correct_rows_never_chosen():
    chosen = confident_mistakes(
        predictions(
            [
                ("a.jpg", "cat", "dog", 0.60),
                ("b.jpg", "cat", "cat", 0.99),  # right: never a mistake, however confident
                ("c.jpg", "dog", "cat", 0.95),
                ("d.jpg", "cow", "dog", 0.70),
            ]
        )
    )
    assert list(chosen.columns) == COLUMNS
    assert chosen["file"].tolist() == ["c.jpg", "d.jpg", "a.jpg"]
    assert chosen["probability"].tolist() == [0.95, 0.70, 0.60]


def test_ties_are_broken_by_file_name_whatever_the_rows_order():
    rows = [(f"{name}.jpg", "cat", "dog", 0.8) for name in "dbca"]
    assert confident_mistakes(predictions(rows))["file"].tolist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert confident_mistakes(predictions(rows[::-1]))["file"].tolist() == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "d.jpg",
    ]


def test_at_most_so_many_per_true_class_and_in_all():
    rows = [(f"cat{i}.jpg", "cat", "dog", 0.99 - i / 100) for i in range(10)]
    rows += [(f"dog{i}.jpg", "dog", "cat", 0.5 - i / 100) for i in range(10)]
    chosen = confident_mistakes(predictions(rows), count=5, per_true_class=3)
    assert chosen["file"].tolist() == ["cat0.jpg", "cat1.jpg", "cat2.jpg", "dog0.jpg", "dog1.jpg"]
    assert confident_mistakes(predictions(rows), count=24, per_true_class=4)[
        "true"
    ].value_counts().to_dict() == {
        "cat": 4,
        "dog": 4,
    }


def test_a_model_without_mistakes_gives_an_empty_table_with_its_columns():
    chosen = confident_mistakes(predictions([("a.jpg", "cat", "cat", 0.9), ("b.jpg", "dog", "dog", 0.4)]))
    assert chosen.empty and list(chosen.columns) == COLUMNS


def test_a_class_never_predicted_still_has_its_mistakes_listed():
    rows = [("a.jpg", "cow", "cat", 0.7), ("b.jpg", "cow", "dog", 0.9), ("c.jpg", "cat", "dog", 0.3)]
    chosen = confident_mistakes(predictions(rows))  # nothing is ever predicted "cow"
    assert chosen[["file", "predicted"]].values.tolist() == [
        ["b.jpg", "dog"],
        ["a.jpg", "cat"],
        ["c.jpg", "dog"],
    ]
