"""The batched training path (`load_batch` in the loader workers, then `finish_batch` on the device) gives
every system the batch its per-sample path gives: same keys, shapes, dtypes and values, for the same
random draws. The per-sample path is what evaluation and inference still use, item by item."""

import copy

import numpy as np
import pytest
import torch

from datamodules.face_speech import emphasise
from datamodules.grid import GRIDDataModule
from datamodules.hq_voxceleb import HQVoxCelebDataModule
from datamodules.lrw import LRWDataModule
from datamodules.noisy_speech import NoiseMixing
from datamodules.pipeline.action_units import AULabelConfig
from datamodules.pipeline.audio import batchable_speech, stored_speech, to_pcm16
from datamodules.pipeline.face_tracks import FaceCropConfig
from datamodules.pipeline.noise_mixing import mix_at_snr, peak_normalise
from datamodules.talking_face_windows import clip_collate
from datamodules.voice_face import _pad_to, normalise_face
from datamodules.youtubers import YoutubersDataModule

TINY = dict(demo_size="tiny", num_workers=0, prepare_workers=0)
TALKING_FACES = {
    "e2e_nr": (LRWDataModule, dict(image_size=64, sample_rate=8000, noise=NoiseMixing(seed=3))),
    "tcsan": (
        GRIDDataModule,
        dict(
            image_size=56,
            crop=FaceCropConfig(method="box"),
            mfcc_width=28,
            au_labels=AULabelConfig(source="geometry"),
            window_frames=25,
        ),
    ),
}


def prepared(cls, **kwargs):
    datamodule = cls(**TINY, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def compact_and_finished(datamodule):
    """(the loader's first batch request's indices, its compact batch, the batch finished on the CPU)."""
    loader = datamodule.train_dataloader()
    indices = loader.epoch_requests(0)[0][3]
    compact = next(iter(loader))
    raw = {key: value.clone() for key, value in compact.items()}
    return indices, raw, datamodule.on_after_batch_transfer(compact, 0)


def assert_same_batch(expected: dict, actual: dict, atol: float = 0.0):
    assert set(expected) == set(actual)
    for key, value in expected.items():
        assert value.shape == actual[key].shape and value.dtype == actual[key].dtype, key
        assert torch.allclose(value.double(), actual[key].double(), atol=atol, rtol=0), key


@pytest.mark.parametrize("system", TALKING_FACES)
def test_talking_face_batches_equal_the_per_clip_items(system):
    cls, kwargs = TALKING_FACES[system]
    datamodule = prepared(cls, batch_size=2, **kwargs)
    indices, raw, batch = compact_and_finished(datamodule)
    assert raw["video"].dtype == raw["identity"].dtype == torch.uint8  # workers copy pixels, no arithmetic
    assert raw["audio"].dtype == torch.int16  # and speech as the cache stores it
    clean = copy.copy(datamodule.datasets["train"])
    clean.noise = None
    items = []
    for position, index in enumerate(indices):
        row = clean.rows[index]
        au = None if clean.au_labels is None else clean.au_labels[row]
        items.append(clean.window(*clean.items[row], au=au, first=int(raw["first_frame"][position])))
    expected = clip_collate(items)
    if "noise" in raw:
        lengths = raw["audio_length"].tolist()
        expected["noisy_audio"] = torch.stack(
            [
                torch.from_numpy(
                    peak_normalise(
                        mix_at_snr(
                            expected["audio"][i, :n].numpy(),
                            raw["noise"][i, :n].numpy(),
                            float(raw["snr_db"][i]),
                        )
                    )
                )
                for i, n in enumerate(lengths)
            ]
        )
    assert_same_batch(expected, batch, atol=1e-6)


def test_padded_frames_finish_as_zeros_like_the_per_clip_collate():
    datamodule = prepared(LRWDataModule, batch_size=2, image_size=32, sample_rate=8000)
    _, raw, _ = compact_and_finished(datamodule)
    raw["frame_mask"][:, -3:] = False  # as if both clips were 3 frames shorter than the longest
    finished = datamodule.finish_batch(raw)
    assert finished["video"][:, -3:].abs().max() == 0 and finished["video"][:, :-3].min() < 0


@pytest.mark.parametrize("segments", [0, 5])
def test_voice_face_batches_hold_cached_faces_and_utterance_crops(segments):
    datamodule = prepared(HQVoxCelebDataModule, batch_size=4, segments=segments)
    _, raw, batch = compact_and_finished(datamodule)
    assert raw["face"].dtype == torch.uint8
    corpus = datamodule.corpora["train"]
    for face, identity, speech in zip(batch["face"], batch["identity"], batch.get("mel", batch.get("mels"))):
        identity = int(identity)
        errors = [
            float((normalise_face(corpus.face(row)) - face).abs().max()) for row in corpus.face_rows[identity]
        ]
        assert min(errors) < 1e-6  # one of the identity's faces, normalised as evaluation normalises it
        utterances = [_pad_to(corpus.mel(row), speech.shape[-1]) for row in corpus.mel_rows[identity]]
        for window in speech.reshape(-1, *speech.shape[-2:]).numpy():  # one crop, or the fuser's windows
            assert any(_holds(utterance, window) for utterance in utterances)


def _holds(utterance: np.ndarray, window: np.ndarray) -> bool:
    """Is `window (n_mels, W)` a crop of `utterance (n_mels, T)`?"""
    width = window.shape[1]
    return any(
        np.array_equal(utterance[:, s : s + width], window) for s in range(utterance.shape[1] - width + 1)
    )


def test_wav2pix_batches_equal_the_per_pair_items():
    datamodule = prepared(YoutubersDataModule, batch_size=4, image_size=32)
    indices, raw, batch = compact_and_finished(datamodule)
    assert raw["face"].dtype == raw["wrong_face"].dtype == torch.uint8 and "audio" not in raw
    dataset = datamodule.datasets["train"]
    for position, index in enumerate(indices):
        row = dataset.rows[index % len(dataset.rows)]
        meta, arrays = dataset.items[row]
        start = int(batch["audio_start"][position])
        window = stored_speech(arrays["audio"][start : start + dataset.audio_samples])
        expected = torch.from_numpy(emphasise(window, *dataset.emphasis))
        assert torch.allclose(batch["audio"][position], expected, atol=1e-6, rtol=0)
        assert torch.equal(batch["face"][position], dataset._face(row))
        wrong = batch["wrong_face"][position]
        assert any(torch.equal(wrong, dataset._face(other)) for other in dataset.other_rows[meta["identity"]])


def test_finishing_twice_changes_nothing():
    datamodule = prepared(YoutubersDataModule, batch_size=4, image_size=32)
    _, _, batch = compact_and_finished(datamodule)
    again = datamodule.finish_batch({key: value.clone() for key, value in batch.items()})
    assert_same_batch(batch, again)


def test_speech_is_cached_as_16_bit_pcm_and_read_back_as_float():
    """16-bit sources come back exactly; resampled speech is rounded to 16 bits; caches written before PCM
    (float32) read as they are, and a batch mixing both is made of floats, never of raw PCM numbers."""
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    wave = pcm.astype(np.float32) / 32768  # what soundfile returns for a 16-bit file
    assert np.array_equal(to_pcm16(wave), pcm) and np.array_equal(stored_speech(pcm), wave)
    resampled = np.linspace(-1, 1, 1001, dtype=np.float32)
    error = np.abs(stored_speech(to_pcm16(resampled)) - resampled)
    assert error[:-1].max() <= 0.5 / 32768 + 1e-9 and error[-1] == 1 / 32768  # +1.0 clips to 32767
    assert np.array_equal(stored_speech(wave), wave)
    assert [piece.dtype for piece in batchable_speech([pcm, pcm])] == [np.int16, np.int16]
    mixed = batchable_speech([pcm, wave])
    assert all(piece.dtype == np.float32 for piece in mixed) and np.array_equal(mixed[0], mixed[1])
