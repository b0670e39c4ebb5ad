"""FaceSet and the batched reference preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter
from torch.utils.data import DataLoader

from captum_fau.data.base import FaceSet
from captum_fau.data.synthfacs import SynthFACS
from captum_fau.data.transforms import (
    box_mean,
    local_contrast_normalize,
    local_mean_subtract,
    model_input,
)
from captum_fau.errors import ConfigError, DatasetError, InputShapeError, LabelError


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


def test_local_mean_zero_pads_as_the_reference() -> None:
    # The reference convolves with a 1/25 kernel and 2 pixels of zero padding.
    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    ours = local_mean_subtract(x, 5)
    reference = x.numpy() - uniform_filter(x.numpy(), size=(1, 1, 5, 5), mode="constant", cval=0.0)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-12)
    # A corner pixel's mean sees only its 3x3 in-image neighbours, divided by 25.
    corner = x[0, 0, :3, :3].sum() / 25
    assert float(box_mean(x, 5)[0, 0, 0, 0]) == pytest.approx(float(corner), abs=1e-12)


def test_local_mean_replicate_padding_on_request() -> None:
    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    ours = local_mean_subtract(x, 5, padding="replicate")
    reference = x.numpy() - uniform_filter(x.numpy(), size=(1, 1, 5, 5), mode="nearest")
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-12)
    # Both paddings agree away from the border.
    np.testing.assert_allclose(ours[..., 2:-2, 2:-2].numpy(), local_mean_subtract(x, 5)[..., 2:-2, 2:-2].numpy())
    with pytest.raises(ConfigError, match="local_mean_padding"):
        local_mean_subtract(x, 5, padding="reflect")
    with pytest.raises(ConfigError, match="local_mean_padding"):
        FaceSet(images=np.zeros((1, 8, 8), np.uint8), local_mean_padding="edge")


def test_model_input_is_reference_scale_minus_local_mean() -> None:
    u8 = torch.randint(0, 256, (3, 1, 12, 12), dtype=torch.uint8)
    scaled = u8.double().numpy() / 255 * 2
    expected = scaled - uniform_filter(scaled, size=(1, 1, 5, 5), mode="constant", cval=0.0)
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


def test_raw_items_are_the_crops_and_items_the_reference() -> None:
    fs = _faces()
    scaled = fs.images[:, None].astype(np.float64) / 255 * 2
    np.testing.assert_array_equal(fs.raw_images([1, 3]).numpy(), fs.images[[1, 3], None])
    assert fs.raw_item(3)["image"].dtype == torch.uint8 and fs.raw_item(3)["emotion"] == fs[3]["emotion"]
    zeros = scaled - uniform_filter(scaled, size=(1, 1, 5, 5), mode="constant")
    np.testing.assert_allclose(fs[3]["image"].numpy(), zeros[3], atol=1e-5)
    lazy = SynthFACS(n=3, seed=1)
    raw = lazy.raw_item(1)["image"]
    assert raw.dtype == torch.uint8
    np.testing.assert_allclose(lazy[1]["image"].numpy(), model_input(raw[None])[0].numpy())


def test_packaged_zoo_model_is_fed_as_it_was_trained() -> None:
    # zerobias-synthfacs-8class was trained with replicate padding; new models use the reference's zeros.
    from captum_fau import ZeroBiasCNN, zoo
    from captum_fau.data.model_inputs import ModelInputs
    from captum_fau.data.synthfacs import load_synthfacs
    from captum_fau.train.trainer import predict
    from captum_fau.zoo.resolve import resolve_input_spec

    model = zoo.load("zerobias-synthfacs-8class")
    assert model.config["local_mean_padding"] == "replicate"
    assert ZeroBiasCNN().config["local_mean_padding"] == "zeros"
    faces = load_synthfacs(n=12, seed=7)
    assert faces.local_mean_padding == "zeros"
    with torch.no_grad():
        logits = model(model_input(torch.from_numpy(faces.images)[:, None], 5, "replicate"))
    np.testing.assert_array_equal(predict(model, faces), logits.argmax(1).numpy())
    inputs = ModelInputs(faces, resolve_input_spec(model, (1, 96, 96)))
    torch.testing.assert_close(inputs.tensors(), model_input(torch.from_numpy(faces.images)[:, None], 5, "replicate"))
    # The one streaming scan (behind TopNDeconv.top_n, FAUKL and analyze) reads the model's inputs.
    from captum_fau.stats.scan import scan

    via_scan = scan(model, "conv3", inputs, batch_size=5, progress=False, keep_outputs=True)
    torch.testing.assert_close(via_scan.outputs, logits, rtol=1e-4, atol=1e-5)  # zeros would differ by ~0.5
