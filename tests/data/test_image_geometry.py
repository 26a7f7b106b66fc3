"""Images are resized by their shorter side and centre-cropped, never squashed: checked on known pixels."""

from PIL import Image

from cnnstudy.data.prepare import load_image


def test_a_wide_image_keeps_its_middle_and_its_proportions(tmp_path):
    # 40 × 20: red | green | blue in columns 0–9, 10–29, 30–39. Shorter side to 10 px gives 20 × 10; the
    # centre 10 × 10 of that is the green middle. Squashed to 10 × 10, a quarter each side would be red/blue.
    image = Image.new("RGB", (40, 20), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, 10, 20))
    image.paste((0, 0, 255), (30, 0, 40, 20))
    path = tmp_path / "wide.png"
    image.save(path)
    loaded = load_image(path, 10)
    assert tuple(loaded.shape) == (3, 10, 10)
    inner = loaded[:, :, 1:9].int()  # the border columns may blend with the neighbours (antialiasing)
    assert (inner[1] > 200).all() and (inner[0] < 40).all() and (inner[2] < 40).all()


def test_a_tall_image_is_cropped_top_and_bottom(tmp_path):
    image = Image.new("RGB", (20, 40), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, 20, 10))  # top quarter red
    path = tmp_path / "tall.png"
    image.save(path)
    loaded = load_image(path, 10).int()
    assert (loaded[0, 1:9, :] < 40).all() and (loaded[1, 1:9, :] > 200).all()  # the red top is cropped away
