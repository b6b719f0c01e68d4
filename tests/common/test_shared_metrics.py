"""The shared metrics on inputs whose answers are known."""

import math

import numpy as np
import pytest
import torch
from skimage import filters
from skimage.data import astronaut

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.metrics.distribution import (
    TF_INCEPTION,
    TORCHVISION_INCEPTION,
    FeatureDistance,
    load_inception,
)
from lightning_modules.common.metrics.lip_sync import SyncNet, lip_sync_error, load_syncnet, score_shifts
from lightning_modules.common.metrics.metric_suite import (
    STANDARD_FILES,
    GeneratedSample,
    MetricSettings,
    MetricSuite,
)
from lightning_modules.common.metrics.sharpness import cpbd, edge_widths


def face_crop(side: int = 128) -> np.ndarray:
    """The astronaut's face (dlib finds it at (175,76)–(265,166)) with a margin, resized to `side`."""
    from PIL import Image

    return np.asarray(Image.fromarray(astronaut()[46:196, 145:295]).resize((side, side), Image.BILINEAR))


class MeanColour(torch.nn.Module):
    """A 6-d stand-in feature extractor: per-channel mean and standard deviation."""

    num_features = 6

    def forward(self, images):
        pixels = images.float() / 255
        return torch.cat([pixels.mean((2, 3)), pixels.std((2, 3))], 1)


# --- sharpness ---------------------------------------------------------------------------------------


def test_edge_width_of_a_linear_ramp_is_its_length():
    row = np.concatenate([np.zeros(20), np.linspace(0, 200, 7), np.full(20, 200.0)])
    image = np.tile(row, (10, 1))
    image[-1, :3] = (
        50.0  # one oblique gradient far from the ramp (the reference measures nothing without any)
    )
    edges = np.zeros_like(image, dtype=bool)
    edges[:, 23] = True  # the ramp's middle
    widths = edge_widths(image, edges)[:, 23]
    # the image's border rows are not measured
    assert np.all(widths[1:-1] == 6) and widths[0] == widths[-1] == 0


def test_cpbd_ranks_a_blurred_face_below_the_sharp_one_and_rejects_flat_frames():
    face = face_crop()
    blurred = (filters.gaussian(face, sigma=2, channel_axis=-1) * 255).astype(np.uint8)
    sharp, soft = cpbd(face), cpbd(blurred)
    assert 0 <= soft < sharp <= 1 and sharp - soft > 0.1
    assert math.isnan(cpbd(np.full((64, 64, 3), 128, np.uint8)))  # no edge: no value, not "perfectly sharp"


def reference_cases() -> dict[str, np.ndarray]:
    from PIL import Image
    from scipy import ndimage
    from skimage.data import chelsea, coffee

    face = astronaut()[30:286, 140:396]

    def resized(image, side):
        return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))

    return {
        "face 256 sharp": face,
        "face 256 blurred 2": ndimage.gaussian_filter(face, (2, 2, 0)),
        "face 112 sharp": resized(face, 112),
        "face 128 blurred 1": ndimage.gaussian_filter(resized(face, 128), (1, 1, 0)),
        "face 64 sharp": resized(face, 64),
        "cat 200x300": chelsea()[:200, :300],
        "coffee 256 blurred 1": ndimage.gaussian_filter(coffee()[:256, :256], (1, 1, 0)),
    }


# Computed by the reference, python-cpbd 1.0.7 (`cpbd.compute`, its scipy.ndimage.imread import removed), on
# each image converted to PIL "L" mode, as its command line reads files.
REFERENCE_CPBD = {
    "face 256 sharp": 0.3986,
    "face 256 blurred 2": 0.0055,
    "face 112 sharp": 0.2670,
    "face 128 blurred 1": 0.0925,
    "face 64 sharp": 0.4823,
    "cat 200x300": 0.5498,
    "coffee 256 blurred 1": 0.2113,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_CPBD))
def test_cpbd_matches_the_reference_implementation(name):
    assert cpbd(reference_cases()[name]) == pytest.approx(REFERENCE_CPBD[name], abs=0.01)


# --- lip sync ----------------------------------------------------------------------------------------


def test_lse_finds_the_shift_between_mouth_and_speech_embeddings():
    mouth = torch.randn(60, 16)
    aligned = score_shifts(mouth, mouth.clone())
    assert aligned.offset == 0 and aligned.distance == pytest.approx(0, abs=1e-5) and aligned.confidence > 1
    lagging = torch.cat([torch.randn(2, 16), mouth[:-2]])  # speech window k shows mouth window k − 2
    score = score_shifts(mouth, lagging)
    assert score.offset == -2 and score.distance < 0.2 * score.confidence


def test_syncnet_streams_embed_to_1024_and_its_weights_round_trip(tmp_path):
    network = load_syncnet(None, allow_random=True)
    assert network.embed_mouth(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)
    assert network.embed_speech(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
    path = tmp_path / "syncnet_v2.model"
    torch.save(network.state_dict(), path)
    loaded = load_syncnet(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), network.state_dict().values()))
    frames = np.random.default_rng(0).integers(0, 255, (10, 48, 48, 3), dtype=np.uint8)
    score = lip_sync_error(loaded, frames, np.zeros(6400, np.float32))
    assert score.windows == 5 and math.isfinite(score.distance)
    with pytest.raises(ValueError, match="at least 6 frames"):
        lip_sync_error(loaded, frames[:5], np.zeros(6400, np.float32))


def test_syncnet_weights_are_checked_and_never_guessed(tmp_path):
    with pytest.raises(WeightsError, match="syncnet_v2.model"):
        load_syncnet(None)
    wrong = tmp_path / "other.pt"
    torch.save({"netcnnaud.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(WeightsError, match=str(wrong)):
        load_syncnet(wrong)
    assert sum(p.numel() for p in SyncNet().parameters()) > 13e6  # the released network's size


# --- distribution ------------------------------------------------------------------------------------


def test_fid_and_kid_are_zero_for_one_set_and_grow_with_a_shift():
    images = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8)
    same = FeatureDistance(MeanColour())
    same.update(images, real=True)
    same.update(images, real=False)
    values, missing = same.compute()
    assert not missing and abs(values["fid"]) < 1e-6 and abs(values["kid"]) < 1e-3
    darker = FeatureDistance(MeanColour())
    darker.update(images, real=True)
    darker.update(images // 3, real=False)
    assert darker.compute()[0]["fid"] > 0.05
    few = FeatureDistance(MeanColour())
    few.update(images[:1], real=True)
    assert "needs ≥ 2" in few.compute()[1]["fid"]


def test_inception_features_are_2048_wide_and_need_a_weights_path():
    for variant in (TF_INCEPTION, TORCHVISION_INCEPTION):
        extractor = load_inception(None, variant, allow_random=True)
        assert extractor(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2, 2048)
        with pytest.raises(WeightsError, match=variant.released_file):
            load_inception(None, variant)


# --- the suite ---------------------------------------------------------------------------------------


def test_identical_clips_score_perfectly_and_missing_weights_are_explained():
    clip = np.stack([face_crop()] * 3)
    suite = MetricSuite(MetricSettings(frames_per_clip=2))
    suite.update(GeneratedSample(clip, clip.copy(), "a", speech=np.zeros(16000, np.float32)))
    values, missing = suite.compute()
    assert values["psnr"] == math.inf and values["ssim"] == pytest.approx(1) and values["l1"] == 0
    assert values["lmd_mouth"] == pytest.approx(0, abs=1e-9) and values["landmark_failure_rate"] == 0
    assert values["face_detection_rate"] == 1 and values["identity_cosine"] == pytest.approx(1, abs=1e-5)
    assert values["cpbd"] == pytest.approx(values["cpbd_real"])
    for key, weights in (
        ("lpips", "lpips_backbone"),
        ("fid", "inception_weights"),
        ("lse_d", "syncnet_weights"),
    ):
        assert weights in missing[key], missing[key]
    assert "identities" in missing["identity_recall"]
    # A still clip over silent speech: every speech-dependence row is there, with a value or a reason.
    for key in (
        "speech_mouth_r",
        "speech_mouth_r_real",
        "speech_mouth_r_control",
        "mouth_swap_sensitivity",
        "silence_mouth_closed",
    ):
        assert key in missing, key
    assert "video system" in missing["speech_identity_r@1"]


def test_unpaired_faces_get_no_pixel_metrics_but_identity_retrieval():
    face = face_crop(64)
    other = np.ascontiguousarray(face[:, ::-1])
    suite = MetricSuite(MetricSettings(landmarks=False, allow_random=True))
    suite.update(GeneratedSample(face[None], np.stack([face, face]), "a", paired=False))
    suite.update(GeneratedSample(other[None], other[None], "b", paired=False))
    values, missing = suite.compute()
    assert "psnr" not in values and "other pictures" in missing["psnr"]
    assert values["identity_recall@1"] == 1.0 and values["identities"] == 2
    assert values["speech_identity_r@1"] == 1.0 and values["speech_identity_r@1_chance"] == 0.5
    assert values["speech_identity_r@1_control"] == 0.0 and "2 samples" in missing["speech_identity_r@1_real"]
    assert "face system" in missing["speech_mouth_r"]
    assert "fid" in values and "lse_d" in missing  # random stand-ins: computed; no speech: no lip sync


def test_weights_folder_is_searched_by_released_names(tmp_path):
    (tmp_path / STANDARD_FILES["syncnet_weights"]).write_bytes(b"")
    settings = MetricSettings.from_folder(str(tmp_path), landmarks=False)
    assert (
        settings.syncnet_weights == str(tmp_path / "syncnet_v2.model") and settings.inception_weights is None
    )
    with pytest.raises(WeightsError, match="unknown metric setting"):
        MetricSettings.from_folder(str(tmp_path), sync="x")
