"""Inside the models: the inspect job on a trained checkpoint, checked against the evaluation and against
independent rebuilds; each figure's pixels and layout."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_hex

from cnnstudy.analysis.mistakes import COLUMNS, confident_mistakes
from cnnstudy.analysis.saliency import stratified_images
from cnnstudy.analysis.scoring import evaluate_checkpoint
from cnnstudy.base.files import load_torch_file
from cnnstudy.data.tensors import load_split
from cnnstudy.figures.inside import (
    draw_comparison_saliency,
    draw_filters,
    draw_mistakes,
    draw_saliency,
    filter_grid,
    first_layer_weights,
    initial_model,
    inspect_job,
)
from cnnstudy.figures.style import model_colours
from cnnstudy.train.inference import load_checkpoint
from cnnstudy.train.models import TransferResNet18, build_cnn
from helpers.figures import assert_fits_the_column
from helpers.training import run_training, tiny_hyperparameters

OUTPUTS = {
    "mistakes": "mistakes.png",
    "mistakes_table": "mistakes.csv",
    "filters": "filters.png",
    "saliency": "saliency.png",
    "saliency_maps": "saliency.pt",
}
SETTINGS = {"device": "cpu", "gpu_wait_minutes": 0}


@pytest.fixture(scope="module")
def inspected(prepared, tmp_path_factory):
    """A tiny CNN trained for two epochs, evaluated, and inspected: (folder, test split, predictions)."""
    folder = tmp_path_factory.mktemp("inspected")
    run_training(prepared, folder, tiny_hyperparameters(epochs=2))
    test = load_split(prepared / "test.pt", torch.device("cpu"))
    _, predictions, _ = evaluate_checkpoint(folder / "checkpoint.pt", test, torch.device("cpu"), 64)
    predictions.to_csv(folder / "predictions.csv", index=False)
    outputs = {key: folder / name for key, name in OUTPUTS.items()}
    inspect_job(folder / "checkpoint.pt", prepared / "test.pt", folder / "predictions.csv", outputs, SETTINGS)
    return folder, test, predictions


def test_the_mistakes_table_lists_the_evaluations_most_confident_mistakes(inspected):
    folder, test, predictions = inspected
    table = pd.read_csv(folder / "mistakes.csv")
    assert list(table.columns) == COLUMNS and len(table) > 0
    wrong = predictions[predictions["true"] != predictions["predicted"]].set_index("file")
    assert set(table["file"]) <= set(wrong.index) and set(table["file"]) <= set(test.files)
    assert table["probability"].is_monotonic_decreasing
    for row in table.itertuples():
        assert (row.true, row.predicted) == tuple(wrong.loc[row.file, ["true", "predicted"]])
        assert row.probability == pytest.approx(wrong.loc[row.file, "confidence"], abs=1e-4)
    expected = confident_mistakes(predictions)
    assert table["file"].tolist() == expected["file"].tolist()


def test_grad_cam_explains_the_shared_images_as_the_evaluation_predicted_them(inspected):
    folder, test, predictions = inspected
    record = load_torch_file(folder / "saliency.pt")
    shared = [test.files[index] for index in stratified_images(test.labels, test.files)]
    assert record["files"] == shared and len(shared) == len(test.classes)  # one image per class
    said = predictions.set_index("file").loc[shared, "predicted"].tolist()
    assert [record["classes"][index] for index in record["predicted"].tolist()] == said
    size = test.images.shape[-1]
    assert record["predicted_maps"].shape == record["true_maps"].shape == (len(shared), size, size)
    assert float(record["predicted_maps"].float().max()) <= 1.0 and float(record["predicted_maps"].min()) >= 0
    assert record["layer"] == "relu3" and record["map_shape"] == [4, 4]  # 16 px, three blocks: 16, 8, 4


def test_the_filters_at_the_start_are_those_the_run_began_with(inspected):
    folder, _, _ = inspected
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    hp = checkpoint["hyperparameters"]
    torch.manual_seed(hp["seed"])  # what build_model does before building: rebuilt here independently
    independent = build_cnn(hp["image_size"], hp["channels"], hp["kernel_size"], hp["fc_hidden"], 10)
    start = first_layer_weights(initial_model(checkpoint))
    torch.testing.assert_close(start, independent.conv1.weight.detach())
    trained = checkpoint["model_state"]["conv1.weight"]
    assert not torch.equal(start, trained)  # two epochs of training moved them


def test_a_pretrained_start_is_read_from_its_weights_file(tmp_path):
    torch.manual_seed(3)
    state = TransferResNet18("bn_frozen", 1000).net.state_dict()
    weights = tmp_path / "resnet18-00000000.pth"
    torch.save(state, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    checkpoint = {
        "hyperparameters": {**tiny_hyperparameters("resnet18_bn_frozen"), "weights": "imagenet"},
        "classes": [str(index) for index in range(10)],
        "pretrained": True,
    }
    start = first_layer_weights(initial_model(checkpoint, weights, digest))
    torch.testing.assert_close(start, state["conv1.weight"])


def test_filter_tiles_map_zero_to_grey_and_the_scale_to_full_colour():
    weights = torch.zeros(2, 3, 3, 3)
    weights[1, 0] = 0.5  # red channel of the second filter at +scale
    weights[1, 2] = -0.5  # blue at -scale
    grid = filter_grid(weights, scale=0.5)
    assert grid.shape == (3, 7, 3)  # two tiles and a one-pixel gap
    np.testing.assert_allclose(grid[:, :3], 0.5)
    np.testing.assert_allclose(grid[:, 3], 1.0)  # the gap is white
    np.testing.assert_allclose(grid[:, 4:, 0], 1.0)
    np.testing.assert_allclose(grid[:, 4:, 1], 0.5)
    np.testing.assert_allclose(grid[:, 4:, 2], 0.0)


def test_images_are_drawn_as_stored(inspected):
    """Un-normalised, in the dataset's orientation and colours: the drawn array is the uint8 image."""
    _, test, predictions = inspected
    mistakes = confident_mistakes(predictions)
    figure = draw_mistakes(mistakes, test, "baseline", 5, len(test))
    first = test.images[test.files.index(mistakes["file"].iloc[0])]
    drawn = figure.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(drawn), first.permute(1, 2, 0).numpy())


def test_a_model_without_mistakes_says_so(prepared, tmp_path):
    test = load_split(prepared / "test.pt", torch.device("cpu"))
    figure = draw_mistakes(pd.DataFrame(columns=COLUMNS), test, "perfect", 0, len(test))
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert f"no mistakes on the {len(test)} test images" in texts
    assert_fits_the_column(figure, tmp_path / "none.png")


def test_every_inside_figure_fits_the_column_and_rows_keep_model_colours(inspected, tmp_path):
    folder, test, predictions = inspected
    record = load_torch_file(folder / "saliency.pt")
    images = [test.images[test.files.index(name)] for name in record["files"]]
    weights = torch.randn(128, 3, 3, 3) * 0.1  # the study's first layer: 128 filters
    models = ["baseline", "dropout", "resnet18_bn_unfrozen", "my_variant"]
    records = [{**record, "model": model, "pretrained": None} for model in models]
    figures = {
        "mistakes": draw_mistakes(confident_mistakes(predictions), test, "baseline", 9, len(test)),
        "filters_study": draw_filters(
            weights, weights * 1.1, "baseline", "random initialisation from seed 0"
        ),
        "filters_resnet": draw_filters(
            *(torch.randn(64, 3, 7, 7),) * 2, "resnet18_full", "the pretrained weights"
        ),
        "saliency": draw_saliency(record, images, "baseline"),
        "comparison": draw_comparison_saliency(records, test, models),
    }
    for name, figure in figures.items():
        assert_fits_the_column(figure, tmp_path / f"{name}.png")
    labels = {
        text.get_text().split("\n")[0]: to_hex(text.get_color())
        for ax in figures["comparison"].axes
        for text in ax.texts
        if text.get_text()
    }
    assert labels == model_colours(models)
