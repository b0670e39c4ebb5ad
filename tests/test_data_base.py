"""FaceSet and the batched reference preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter
from torch.utils.data import DataLoader

from captum_fau.data.base import FaceSet
from captum_fau.data.transforms import local_contrast_normalize, local_mean_subtract, model_input
from captum_fau.errors import DatasetError, InputShapeError, LabelError


def _faces(n: int = 6) -> FaceSet:
    rng = np.random.default_rng(0)
    return FaceSet(
        images=rng.integers(0, 256, (n, 16, 16), dtype=np.uint8),
        class_names=("a", "b", "c"),
        emotions=np.arange(n) % 3,
        aus=(rng.random((n, 2)) > 0.5).astype(np.float32) * 3,
        au_ids=("AU1", "AU12"),
        subjects=np.array([f"S{i // 2}" for i in range(n)]),
        name="toy",
    )


def test_local_mean_matches_scipy_uniform_filter() -> None:
    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    ours = local_mean_subtract(x, 5)
    reference = x.numpy() - uniform_filter(x.numpy(), size=(1, 1, 5, 5), mode="nearest")
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-12)


def test_model_input_is_reference_scale_minus_local_mean() -> None:
    u8 = torch.randint(0, 256, (3, 1, 12, 12), dtype=torch.uint8)
    scaled = u8.double().numpy() / 255 * 2
    expected = scaled - uniform_filter(scaled, size=(1, 1, 5, 5), mode="nearest")
    np.testing.assert_allclose(model_input(u8).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(model_input(u8, local_mean=0).numpy(), scaled, atol=1e-6)
    assert local_contrast_normalize(torch.rand(1, 1, 9, 9)).shape == (1, 1, 9, 9)
    with pytest.raises(InputShapeError, match=r"\[B, C, H, W\]"):
        model_input(torch.zeros(12, 12, dtype=torch.uint8))


def test_items_tensors_and_loader_agree() -> None:
    fs = _faces()
    item = fs[4]
    assert set(item) == {"image", "index", "emotion", "aus", "subject"}
    assert item["subject"] == "S2" and item["emotion"] == 1 and item["index"] == 4
    torch.testing.assert_close(fs.tensors([4])[0], item["image"])
    batch = next(iter(DataLoader(fs, batch_size=6)))
    torch.testing.assert_close(batch["image"], fs.tensors())
    assert fs.au_presence.dtype == bool and fs.au_presence.shape == (6, 2)


def test_subset_keeps_labels_aligned() -> None:
    fs = _faces()
    sub = fs.subset([5, 1])
    assert len(sub) == 2 and sub.emotions.tolist() == [2, 1] and sub.subjects.tolist() == ["S2", "S0"]
    np.testing.assert_array_equal(sub.images[0], fs.images[5])
    assert len(fs.subset(np.arange(6) < 3)) == 3
    assert "6 images 16x16" in repr(fs) and "3 subjects" in repr(fs)


@pytest.mark.parametrize(
    "changes, error, fragment",
    [
        ({"images": np.zeros((2, 4, 4), np.float32)}, DatasetError, "uint8"),
        ({"emotions": np.array([0, 1])}, LabelError, "2 entries but there are 6"),
        ({"emotions": np.array([0, 1, 2, 3, 0, 0])}, LabelError, "outside -1..2"),
        ({"aus": np.zeros((6, 3), np.float32)}, LabelError, "2 au_ids"),
    ],
)
def test_bad_faceset_input(changes, error, fragment) -> None:
    fs = _faces()
    kwargs = {k: getattr(fs, k) for k in ("images", "class_names", "emotions", "aus", "au_ids", "subjects")}
    with pytest.raises(error, match=fragment):
        FaceSet(**{**kwargs, **changes})


def test_au_presence_without_labels() -> None:
    with pytest.raises(LabelError, match="no AU labels"):
        FaceSet(images=np.zeros((1, 4, 4), np.uint8)).au_presence
