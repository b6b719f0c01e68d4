"""Wav2Pix as a LightningModule: ~1 s of raw speech → a face of the speaker, trained as a conditional LSGAN.

The generator side is the speech encoder Φ, the auxiliary identity classifier C on Φ's embedding e, and
the image decoder G; the discriminator D scores an image together with e. Default loss weights
are the released code's: D = (D(x,ē) − 0.9)² + D(x̂,ē)² + D(x_w,ē)²; G = (D(x̂,e) − 1)² +
100·FM + 50·L1 + 20·CE. `paper_only` weights (FM 0, L1 0, no wrong face, real target 1, ½ factors) are
an ablation config. D steps before G on each batch, as in the authors' loop, and G's step runs the
generator side again (encoder, classifier and G: new dropout masks) instead of reusing D's fake.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.contracts import LinkedSpeechRate
from ..common.images import log_sample_grid, signed_to_uint8
from ..common.metrics.metric_suite import GeneratedSample
from ..common.training.gan import AdversarialModule, LossTerms
from ..common.training.losses import lsgan_loss, mean_feature_matching_loss
from .networks import FaceDiscriminator, FaceGenerator, IdentityClassifier, SpeechEncoder

SAMPLE_STRIDE = 5  # the release stores each face with 5 speech crops


class Wav2PixModule(LinkedSpeechRate, AdversarialModule):
    """Wav2Pix (Duarte et al., ICASSP 2019).

    Args:
        image_size: 64 or 128 (linked from the datamodule).
        audio_samples: speech window in samples (16000 = 1 s; linked from the datamodule).
        sample_rate, pre_emphasis, emphasis_first: how the datamodule read and normalised the speech
            (linked from it), so that inference prepares a user's speech the same way.
        num_identities: classes of the auxiliary classifier (linked: the training identities).
        real_label: D's target for real pairs (0.9 = one-sided label smoothing; 1.0 in the paper).
        wrong_weight: weight of the mismatched-face term in D's loss (0 disables it).
        adversarial_scale: factor on every LSGAN term (0.5 gives the paper's ½ in eqs. 1-2).
        feature_matching_weight, l1_weight, identity_weight: G's extra terms (100, 50, 20 in the code).
        lr_generator, lr_discriminator, betas: Adam (1e-4 and 4e-4, two time-scale; β = (0.5, 0.999)).
        mc_dropout: at inference, BatchNorm uses running statistics but G's dropout stays on (the paper's
            noise source); False makes inference deterministic.
        generator_spectral_norm: spectral norm on G's layers (the released code); False lets a short run
            learn G's gain (see `FaceGenerator`).
        samples_to_log: generated/real pairs in the validation sample grid.
    """

    checkpoint_monitor = ("val/l1", "min")  # pixel L1 to the paired real face on held-out speech

    # The authors' loop calls the generator once for D's update and again for G's, so G learns from a
    # sample with its own dropout masks, drawn after D has moved.
    fresh_generator_forward = True

    def __init__(
        self,
        image_size: int = 128,
        audio_samples: int = 16000,
        sample_rate: int = 16000,
        pre_emphasis: float = 0.95,
        emphasis_first: bool = True,
        num_identities: int = 10,
        real_label: float = 0.9,
        wrong_weight: float = 1.0,
        adversarial_scale: float = 1.0,
        feature_matching_weight: float = 100.0,
        l1_weight: float = 50.0,
        identity_weight: float = 20.0,
        lr_generator: float = 1e-4,
        lr_discriminator: float = 4e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        mc_dropout: bool = True,
        generator_spectral_norm: bool = True,
        samples_to_log: int = 8,
        nonfinite: str = "raise",
        gradient_clip_norm: float | None = None,
    ):
        super().__init__(nonfinite=nonfinite, gradient_clip_norm=gradient_clip_norm, discriminator_first=True)
        self.save_hyperparameters()
        self.speech_encoder = SpeechEncoder(num_samples=audio_samples)
        self.identity_classifier = IdentityClassifier(num_identities)
        self.generator = FaceGenerator(
            image_size=image_size, keep_dropout_at_inference=mc_dropout, spectral_norm=generator_spectral_norm
        )
        self.discriminator = FaceDiscriminator(image_size=image_size)
        self._samples: dict[str, list] = {}

    # --- forward ---------------------------------------------------------------------------------------

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """`(B, T)` speech → `(B, 3, S, S)` faces in [-1, 1]."""
        return self.generator(self.speech_encoder(audio))

    def generate(self, batch: dict) -> dict[str, torch.Tensor]:
        embedding = self.speech_encoder(batch["audio"])
        return {
            "fake": self.generator(embedding),
            "embedding": embedding,
            "logits": self.identity_classifier(embedding),
        }

    def discriminator_loss(self, batch: dict, output: dict) -> LossTerms:
        """`output` arrives detached: neither G nor the encoder learn from D's loss."""
        h, embedding = self.hparams, output["embedding"]
        real = lsgan_loss(self.discriminator(batch["face"], embedding)[0], h.real_label)
        fake = lsgan_loss(self.discriminator(output["fake"], embedding)[0], 0.0)
        terms = {"real": real, "fake": fake}
        if h.wrong_weight:
            terms["wrong"] = lsgan_loss(self.discriminator(batch["wrong_face"], embedding)[0], 0.0)
        total = h.adversarial_scale * (real + fake + h.wrong_weight * terms.get("wrong", 0.0))
        return LossTerms(total, terms)

    def generator_loss(self, batch: dict, output: dict) -> LossTerms:
        h = self.hparams
        score, fake_features = self.discriminator(output["fake"], output["embedding"])
        with torch.no_grad():
            _, real_features = self.discriminator(batch["face"], output["embedding"])
        terms = {
            "adversarial": lsgan_loss(score, 1.0),
            "feature_matching": mean_feature_matching_loss(real_features, fake_features),
            "l1": F.l1_loss(output["fake"], batch["face"]),
            "identity": F.cross_entropy(output["logits"], batch["identity"]),
        }
        total = (
            h.adversarial_scale * terms["adversarial"]
            + h.feature_matching_weight * terms["feature_matching"]
            + h.l1_weight * terms["l1"]
            + h.identity_weight * terms["identity"]
        )
        terms["identity_accuracy"] = (output["logits"].argmax(1) == batch["identity"]).float().mean()
        return LossTerms(total, terms)

    def configure_optimizers(self):
        h = self.hparams
        generator_side = nn.ModuleList([self.speech_encoder, self.identity_classifier, self.generator])
        return [
            torch.optim.Adam(generator_side.parameters(), lr=h.lr_generator, betas=tuple(h.betas)),
            torch.optim.Adam(self.discriminator.parameters(), lr=h.lr_discriminator, betas=tuple(h.betas)),
        ]

    # --- evaluation ------------------------------------------------------------------------------------

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        output = self.generate(batch)
        size = len(batch["face"])
        self.log(f"{split}/l1", F.l1_loss(output["fake"], batch["face"]), batch_size=size, sync_dist=True)
        accuracy = (output["logits"].argmax(1) == batch["identity"]).float().mean()
        self.log(f"{split}/speech_identity_accuracy", accuracy, batch_size=size, sync_dist=True)
        # Evaluation pairs come in runs of one face with several speech windows: keep one per face so the
        # grid shows different people.
        kept = self._samples.setdefault(split, [])
        if sum(len(fake) for fake, _ in kept) < self.hparams.samples_to_log:
            kept.append((output["fake"][::SAMPLE_STRIDE].detach(), batch["face"][::SAMPLE_STRIDE]))

    def evaluation_epoch_end(self, split: str) -> None:
        kept = self._samples.pop(split, [])
        if not kept:
            return
        count = self.hparams.samples_to_log
        rows = [(torch.cat([pair[i] for pair in kept])[:count] + 1) / 2 for i in (0, 1)]
        log_sample_grid(
            self, f"{split}/samples", rows, caption="top: generated from speech, bottom: the real face"
        )

    @torch.no_grad()
    def face_from_speech(self, speech: np.ndarray) -> np.ndarray:
        """Any length of speech `(L,)` at `speech_rate` → one face `(S, S, 3)` uint8, from the centred
        `audio_samples` window (zero-padded when shorter), normalised as the datamodule does."""
        from datamodules.face_speech import emphasise

        window = self.hparams.audio_samples
        speech = np.pad(np.asarray(speech, np.float32), (0, max(0, window - len(speech))))
        start = (len(speech) - window) // 2
        hp = self.hparams
        wave = emphasise(speech[start : start + window], hp.pre_emphasis, hp.emphasis_first)
        return signed_to_uint8(self(torch.from_numpy(wave.astype(np.float32))[None].to(self.device)))[0]

    @torch.no_grad()
    def evaluation_samples(
        self, datamodule, split: str = "test", max_items: int | None = None, batch_size: int = 32
    ) -> Iterator[GeneratedSample]:
        """For the shared metrics: each `split` utterance's face beside the real face of its video frame."""
        from torch.utils.data import DataLoader, Subset

        dataset = datamodule.evaluation_dataset(split)
        chosen = Subset(dataset, range(min(len(dataset), max_items or len(dataset))))
        rate = int(datamodule.hparams.sample_rate)
        index = 0
        for batch in DataLoader(chosen, batch_size=batch_size):
            fakes = signed_to_uint8(self(batch["audio"].to(self.device)))
            for fake, real, identity, start in zip(
                fakes,
                signed_to_uint8(batch["face"]),
                batch["identity"].tolist(),
                batch["audio_start"].tolist(),
            ):
                # the window before pre-emphasis, read only if it is played beside the face (report clips)
                hear = functools.partial(dataset.speech, index, start)
                yield GeneratedSample(
                    fake[None], real[None], str(identity), None, rate, paired=True, speech_to_hear=hear
                )
                index += 1

    def paper_evaluation(
        self,
        datamodule,
        probe: str = "cnn",
        open_set_embedder: str = "thumbnail",
        facenet_weights: str | None = None,
    ):
        """The paper's identity accuracy and landmark detection rate, and the open-set R@1 when the
        datamodule holds youtubers out (`evaluation.py`; `open_set_embedder` and `facenet_weights` pick
        its face embedding)."""
        from .evaluation import evaluate

        return evaluate(self, datamodule, probe, open_set_embedder, facenet_weights)
