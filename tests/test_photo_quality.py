"""The photo quality check, on synthetic phone photos of documents from the holdout split (seeds
never used to choose its thresholds)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

from services.photo_quality import PROBLEMS, QualityReport, assess
from services.photo_samples import HOLDOUT_SEED_BASE, LABELS, generate, labelled_set

SEEDS = (HOLDOUT_SEED_BASE + 1, HOLDOUT_SEED_BASE + 3)


@lru_cache(maxsize=None)
def photo(label: str, seed: int) -> Image.Image:
    return generate(seed, label)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_good_photo_passes(seed):
    report = assess(photo("good", seed))
    assert report.ok, report.metrics
    assert report.problems == ()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("label", [label for label in LABELS if label != "good"])
def test_a_bad_photo_is_flagged_with_its_problem_first(label, seed):
    report = assess(photo(label, seed))
    assert not report.ok
    assert report.problems[0] == label, (report.problems, report.metrics)


def test_a_12_megapixel_good_photo_passes():
    image = generate(HOLDOUT_SEED_BASE, "good", size=(4000, 3000))
    report = assess(image)
    assert report.ok, report.metrics
    assert (report.metrics["width"], report.metrics["height"]) == (4000, 3000)
    assert max(report.metrics["work_width"], report.metrics["work_height"]) == 1024


def test_the_verdict_does_not_depend_on_resolution():
    good, blurry = photo("good", SEEDS[0]), photo("blurry", SEEDS[0])
    for image, expected in ((good, ()), (blurry, ("blurry",))):
        doubled = image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
        assert assess(doubled).problems == expected


def test_a_portrait_photo_is_judged_like_the_landscape_one():
    image = photo("glare", SEEDS[0])
    assert assess(image.transpose(Image.Transpose.ROTATE_90)).problems == assess(image).problems


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "CMYK", "1", "I", "F"])
def test_any_image_mode_is_accepted(mode):
    report = assess(photo("good", SEEDS[0]).convert(mode))
    assert isinstance(report, QualityReport)
    assert set(report.problems) <= set(PROBLEMS)


def test_a_16_bit_grayscale_photo_is_rescaled_not_clipped():
    image = photo("good", SEEDS[0])
    gray = np.asarray(image.convert("L"), dtype=np.uint16)
    sixteen = Image.fromarray(gray * 257)  # uint16 -> mode I;16
    assert sixteen.mode == "I;16"
    assert assess(sixteen).problems == assess(image.convert("L")).problems == ()


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (40, 30)])
def test_a_tiny_image_is_too_small_and_does_not_crash(size):
    assert assess(Image.new("RGB", size, (128, 128, 128))).problems[0] == "too_small"


def test_blank_frames_are_not_ok():
    assert assess(Image.new("RGB", (1600, 1200), (255, 255, 255))).problems == ("too_bright",)
    assert assess(Image.new("RGB", (1600, 1200), (5, 5, 5))).problems == ("too_dark",)
    assert assess(Image.new("L", (1600, 1200), 140)).problems == ("blurry",)


def test_the_report_carries_its_measurements():
    report = assess(photo("good", SEEDS[0]))
    for key in ("width", "height", "mean", "p95", "bright_fraction", "dark_fraction", "laplacian_var",
                "sharpness", "glare_blob"):
        assert isinstance(report.metrics[key], float)


def test_samples_are_deterministic_and_the_splits_do_not_share_seeds():
    a, b = generate(7, "too_small"), generate(7, "too_small")
    assert a.mode == "RGB" and a.tobytes() == b.tobytes()
    assert generate(7, "too_dark", size=(300, 200)).size == (300, 200)
    label, seed, image = next(iter(labelled_set("holdout", 1)))
    assert (label, seed) == (LABELS[0], HOLDOUT_SEED_BASE)
    _, train_seed, _ = next(iter(labelled_set("train", 1)))
    assert train_seed < HOLDOUT_SEED_BASE
    with pytest.raises(ValueError):
        generate(1, "fuzzy")
