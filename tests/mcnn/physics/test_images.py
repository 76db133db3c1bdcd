"""Image content: bundled scikit-image samples and a user's folder, views and normalisation."""

import logging

import cv2
import numpy as np
import pytest
import tifffile
import torch

from mcnn.physics import BundledImages, FolderImages
from mcnn.physics.images import BUNDLED_NAMES, convert_channels, random_view, to_unit_tensor


def ramp(width: int = 200, height: int = 150) -> torch.Tensor:
    return (torch.arange(width, dtype=torch.float32) / (width - 1)).expand(1, height, width)


def test_every_bundled_image_loads_offline_in_unit_range() -> None:
    images = BundledImages()
    assert len(images) == len(BUNDLED_NAMES)
    for i in range(len(images)):
        img = images.image(i)
        assert img.shape[0] in (1, 3) and img.dtype == torch.float32
        assert img.min() >= 0 and img.max() <= 1 and img.std() > 0.01


def test_bundled_sample_shape_range_and_reproducibility() -> None:
    images = BundledImages(["camera", "astronaut"])
    a = images.sample(4, (48, 64), torch.Generator().manual_seed(0), channels=3)
    b = images.sample(4, (48, 64), torch.Generator().manual_seed(0), channels=3)
    assert a.shape == (4, 3, 48, 64) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match="unknown bundled images"):
        BundledImages(["lena"])


def test_view_at_unit_scale_keeps_the_pixel_pitch_and_flip_reverses_it() -> None:
    src = ramp()
    step = 1 / 199
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        view = random_view(src, (32, 40), g, scale_range=(1.0, 1.0), rotate=False, flip=False)
        torch.testing.assert_close(
            view.diff(dim=-1), torch.full((1, 32, 39), step), atol=1e-5, rtol=0
        )
    zoomed = random_view(src, (32, 40), g, scale_range=(2.0, 2.0), rotate=False, flip=False)
    torch.testing.assert_close(
        zoomed.diff(dim=-1).mean(), torch.tensor(step / 2), atol=1e-6, rtol=0
    )
    slopes = {
        round(
            float(
                random_view(src, (8, 8), torch.Generator().manual_seed(s), (1.0, 1.0), False, True)
                .diff(dim=-1)
                .mean()
                / step
            )
        )
        for s in range(12)
    }
    assert slopes == {-1, 1}


def test_small_images_are_upscaled_to_fill_the_view() -> None:
    tiny = torch.rand(1, 10, 12, generator=torch.Generator().manual_seed(0))
    view = random_view(tiny, (64, 64), torch.Generator().manual_seed(1))
    assert view.shape == (1, 64, 64)
    assert tiny.min() - 1e-6 <= view.min() and view.max() <= tiny.max() + 1e-6
    assert view.std() > 0.05


def test_channel_conversion_uses_luminance_and_repeats_grey() -> None:
    colour = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 2, 2)
    torch.testing.assert_close(convert_channels(colour, 1), torch.full((1, 2, 2), 0.299))
    grey = torch.full((1, 2, 2), 0.4)
    assert torch.equal(convert_channels(grey, 3), grey.expand(3, 2, 2))


def test_integer_images_are_divided_by_their_type_maximum() -> None:
    assert to_unit_tensor(np.full((4, 4), 255, np.uint8)).max() == 1.0
    torch.testing.assert_close(
        to_unit_tensor(np.full((4, 4), 16384, np.uint16)), torch.full((1, 4, 4), 16384 / 65535)
    )
    rgba = to_unit_tensor(np.zeros((5, 6, 4), np.uint8))
    assert rgba.shape == (3, 5, 6)
    floats = to_unit_tensor(np.array([[-2.0, 2.0]], np.float32))
    torch.testing.assert_close(floats, torch.tensor([[[0.0, 1.0]]]))


def write_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 50), 51, np.uint8))  # 0.2
    cv2.imwrite(str(tmp_path / "sub" / "b.png"), np.full((30, 30), 39321, np.uint16))  # 0.6
    tifffile.imwrite(tmp_path / "sub" / "c.tif", np.full((20, 25), 52428, np.uint16))  # 0.8
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 2] = 255  # BGR: pure red
    cv2.imwrite(str(tmp_path / "d.png"), colour)
    return tmp_path


def test_folder_reads_8_and_16_bit_png_and_tiff_recursively(tmp_path) -> None:
    images = FolderImages(write_folder(tmp_path))
    assert [p.name for p in images.files] == ["a.png", "d.png", "b.png", "c.tif"]
    means = sorted(round(float(images.image(i).mean()), 3) for i in (0, 2, 3))
    assert means == [0.2, 0.6, 0.8]
    red = images.image(1)
    assert red.shape == (3, 32, 32) and red[0].min() == 1.0 and red[1:].max() == 0.0
    flat = FolderImages(tmp_path, recursive=False)
    assert len(flat) == 2
    batch = images.sample(6, (64, 64), torch.Generator().manual_seed(0), channels=1)
    assert batch.shape == (6, 1, 64, 64)


def test_folder_errors_name_the_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'}.*does not exist"):
        FolderImages(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"{tmp_path} holds no image"):
        FolderImages(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=f"{tmp_path} holds no readable image"):
        FolderImages(tmp_path)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path, caplog) -> None:
    (tmp_path / "a_broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "b_good.png"), np.full((16, 16), 255, np.uint8))
    with caplog.at_level(logging.WARNING):
        images = FolderImages(tmp_path)
    assert "a_broken.png" in caplog.text
    x = images.sample(3, (8, 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, torch.ones(3, 1, 8, 8))


def test_decoded_images_are_cached_up_to_the_memory_cap(tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((100, 100), 128, np.uint8))  # 40 kB as float32
    cached = FolderImages(tmp_path, cache_mb=1.0)
    uncached = FolderImages(tmp_path, cache_mb=0.01)
    (tmp_path / "a.png").unlink()
    assert cached.sample(1, (16, 16), torch.Generator()).shape == (1, 1, 16, 16)  # from memory
    with pytest.raises(ValueError, match="no readable image"):
        uncached.sample(1, (16, 16), torch.Generator())


def test_count_images_become_content_by_stretching_not_by_the_type_maximum(tmp_path) -> None:
    counts = np.array([[100, 300], [200, 500]], np.uint32)  # e.g. electrons from a detector
    torch.testing.assert_close(
        to_unit_tensor(counts), torch.tensor([[[0.0, 0.5], [0.25, 1.0]]])
    )
    tifffile.imwrite(tmp_path / "counts.tif", counts)
    tifffile.imwrite(tmp_path / "other.tif", counts)
    images = FolderImages(tmp_path)
    assert images.image(0).max() == 1.0  # was ~1e-7 when divided by 2**32 - 1
    bad = np.ones((4, 4), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 of 16 pixels are NaN"):
        to_unit_tensor(bad)


def test_folder_stacks_give_their_first_frame_in_colour_or_grey(tmp_path) -> None:
    rgb_stack = np.zeros((2, 10, 12, 3), np.uint8)
    rgb_stack[0, ..., 1] = 255  # first frame pure green
    tifffile.imwrite(tmp_path / "a.tif", rgb_stack, photometric="rgb")
    tifffile.imwrite(
        tmp_path / "b.tif", np.stack([np.full((9, 9), 0.25), np.ones((9, 9))]).astype(np.float32),
        photometric="minisblack",
    )
    images = FolderImages(tmp_path)
    green = images.image(0)
    assert green.shape == (3, 10, 12) and green[1].min() == 1 and green[[0, 2]].max() == 0
    torch.testing.assert_close(images.image(1), torch.full((1, 9, 9), 0.25))
