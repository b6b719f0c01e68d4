"""SF2F as a LightningModule: speech → voice embedding (→ attention fuser) → face, with two critics.

Stage `encoder_decoder` trains the voice encoder and face decoder on single 1–1.5 s clips; stage `fuser`
freezes both (weights and BatchNorm statistics) and trains only the attention fuser on N windows of
1.25 s, initialised from the first stage's checkpoint (`init_from`). Both stages optimise the same
"conjugate" loss, 10·L1 + 1·L_G + 0.05·L_C + 100·L_P, against a patch discriminator and an
identity (auxiliary-classifier) discriminator per output resolution.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from datamodules.pipeline.features import LogMelConfig

from ..common.images import imagenet_to_unit, log_sample_grid
from ..common.metrics.face_checks import to_uint8
from ..common.metrics.identity_metrics import (
    chance_recall,
    embedding_cosine,
    embedding_l1,
    identity_embedding,
    recall_at_k,
)
from ..common.metrics.metric_suite import GeneratedSample
from ..common.pretrained.face_embedding import build_face_embedder
from ..common.training.checkpoints import load_stage_weights
from ..common.training.gan import AdversarialModule, LossTerms
from ..common.training.losses import discriminator_adversarial_loss, generator_adversarial_loss
from .losses import FaceNetPerceptualLoss
from .networks import (
    sf2f_attention_fuser,
    sf2f_face_decoder,
    sf2f_identity_discriminator,
    sf2f_patch_discriminator,
    sf2f_voice_encoder,
)

STAGES = ("encoder_decoder", "fuser")


class SF2FModule(AdversarialModule):
    """SF2F (Bai et al., "Speech Fusion to Face", ACM MM 2022).

    Args:
        stage: "encoder_decoder" (stage 1) or "fuser" (stage 2: only the fuser and the critics learn).
        preset: "official" (the authors' code, default) or "paper" (the paper's tables).
        image_size: final output side, 64 or 128 (linked from the datamodule).
        multires: emit and train on both 64 and 128 px (requires image_size 128).
        n_mels: log-mel bands of the input (linked from the datamodule).
        vad: whether the datamodule kept only voiced speech (linked from it), so that inference does too.
        num_identities: classes of the identity critic (linked: the training identities).
        width_scale: channel multiplier of encoder, decoder and critics (1.0 = the paper's sizes).
        l1_weight, adversarial_weight, identity_weight, perceptual_weight: λ1..λ4 of the conjugate loss.
        facenet_weights: FaceNet VGGFace2 state dict for the perceptual loss (and `embedder: facenet`).
        allow_random_facenet: use a randomly initialised FaceNet when no weights are given (tests only:
            the loss then measures random features, and identity metrics are meaningless).
        embedder: face embedding for cosine / L1 / Recall@K: "facenet" (paper protocol) or "dlib"
            (offline proxy).
        lr, betas: Adam settings for every optimiser (the paper's Table 13: 5e-4, (0.9, 0.98)).
        init_from: checkpoint whose encoder, decoder and critics initialise this run (stage 2).
        fuser_hop: hop in frames between the 125-frame windows at evaluation (63 = the paper's 50 % overlap).
        window_frames: fuser window length in frames.
        recall_block: gallery block size of the Recall@K protocol (100 in the paper).
    """

    # The authors select checkpoints by the best L1 between the embeddings of generated and real faces of the
    # speaker: an identity match, which a face that ignores the voice cannot win.
    checkpoint_monitor = ("val/l1", "min")
    checkpoint_selection = "best"

    def __init__(
        self,
        stage: str = "encoder_decoder",
        preset: str = "official",
        image_size: int = 64,
        multires: bool = False,
        n_mels: int = 40,
        vad: bool = True,
        num_identities: int = 2890,
        width_scale: float = 1.0,
        l1_weight: float = 10.0,
        adversarial_weight: float = 1.0,
        identity_weight: float = 0.05,
        perceptual_weight: float = 100.0,
        facenet_weights: str | None = None,
        allow_random_facenet: bool = False,
        embedder: str = "facenet",
        lr: float = 5e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        init_from: str | None = None,
        fuser_hop: int = 63,
        window_frames: int = 125,
        recall_block: int = 100,
        nonfinite: str = "raise",
        gradient_clip_norm: float | None = None,
    ):
        super().__init__(nonfinite=nonfinite, gradient_clip_norm=gradient_clip_norm)
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if multires and image_size != 128:
            raise ValueError(f"multires trains at 64 and 128 px and needs image_size 128, got {image_size}")
        if n_mels != 40:
            raise ValueError(f"SF2F's voice encoder takes 40 mel bands, got n_mels={n_mels}")
        self.save_hyperparameters()
        self.voice_encoder = sf2f_voice_encoder(preset=preset, width_scale=width_scale)
        self.face_decoder = sf2f_face_decoder(
            preset=preset, resolution=image_size, multires=multires, width_scale=width_scale
        )
        self.fuser = sf2f_attention_fuser(preset=preset) if stage == "fuser" else None
        resolutions = (64, 128) if multires else (image_size,)
        self.patch_critics = nn.ModuleList(
            sf2f_patch_discriminator(preset=preset, image_size=r, width_scale=width_scale)
            for r in resolutions
        )
        self.identity_critics = nn.ModuleList(
            sf2f_identity_discriminator(num_identities, preset=preset, image_size=r, width_scale=width_scale)
            for r in resolutions
        )
        # Frozen helper networks are kept out of the state dict (no 90 MB FaceNet in every checkpoint).
        self._frozen: dict[str, nn.Module] = {}
        self._evaluation: dict[str, list] = {}
        if init_from:
            self.load_stage_weights(init_from)
        elif stage == "fuser":
            rank_zero_warn(
                "SF2F fuser stage without init_from: the frozen encoder and decoder are random. Pass "
                "--model.init_args.init_from=<stage-1 checkpoint> or run `make train EXP=sf2f`."
            )
        if stage == "fuser":
            for network in (self.voice_encoder, self.face_decoder):
                network.requires_grad_(False).eval()

    # --- forward ---------------------------------------------------------------------------------------

    def embed_speech(self, batch: dict) -> torch.Tensor:
        """`mel (B, 40, T)` → `(B, 512)`, or with the fuser `mels (B, N, 40, W)` → `(B, 512)`."""
        if self.fuser is None:
            return self.voice_encoder(batch["mel"])
        mels = batch["mels"] if "mels" in batch else self._windows(batch["mel"])
        segments = self.voice_encoder(mels.flatten(0, 1)).unflatten(0, mels.shape[:2])  # (B, N, 512)
        return self.fuser(segments)

    def _windows(self, mel: torch.Tensor) -> torch.Tensor:
        """`(B, 40, T)` → `(B, N, 40, window)` overlapping windows (hop 63 → 6 windows for 5 s)."""
        window, hop = self.hparams.window_frames, self.hparams.fuser_hop
        if mel.shape[-1] < window:
            mel = F.pad(mel, (0, window - mel.shape[-1]), value=float(mel.min()))
        return mel.unfold(-1, window, hop).permute(0, 2, 1, 3)

    def forward(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Faces from speech: a tuple of `(B, 3, S, S)` images, lowest resolution first."""
        return self.face_decoder(self.embed_speech(batch))

    def generate(self, batch: dict) -> tuple[torch.Tensor, ...]:
        return self(batch)

    # --- losses ----------------------------------------------------------------------------------------

    def generator_loss(self, batch: dict, fakes: tuple[torch.Tensor, ...]) -> LossTerms:
        h = self.hparams
        terms = {"l1": 0.0, "adv": 0.0, "id": 0.0, "perceptual": 0.0}
        for fake, patch_critic, identity_critic in zip(fakes, self.patch_critics, self.identity_critics):
            real = _resize_like(batch["face"], fake)
            terms["l1"] = terms["l1"] + F.l1_loss(fake, real)
            terms["adv"] = terms["adv"] + generator_adversarial_loss(patch_critic(fake), "bce")
            identity_logits, real_logits = identity_critic(fake)
            terms["id"] = terms["id"] + F.cross_entropy(identity_logits, batch["identity"])
            if real_logits is not None:  # the official critic's real/fake head enters G's loss too
                terms["id"] = terms["id"] + generator_adversarial_loss(real_logits, "bce")
            if h.perceptual_weight > 0:
                terms["perceptual"] = terms["perceptual"] + self._perceptual_loss()(fake, real)
        terms = {k: torch.as_tensor(v, device=self.device, dtype=torch.float32) for k, v in terms.items()}
        total = (
            h.l1_weight * terms["l1"]
            + h.adversarial_weight * terms["adv"]
            + h.identity_weight * terms["id"]
            + h.perceptual_weight * terms["perceptual"]
        )
        return LossTerms(total, terms)

    def discriminator_loss(self, batch: dict, fakes: tuple[torch.Tensor, ...]) -> LossTerms:
        terms = {"patch": 0.0, "id": 0.0}
        for fake, patch_critic, identity_critic in zip(fakes, self.patch_critics, self.identity_critics):
            real = _resize_like(batch["face"], fake)
            # Real and fake go through the critics separately: BatchNorm statistics per call, as the authors
            # do.
            terms["patch"] = terms["patch"] + discriminator_adversarial_loss(
                patch_critic(real), patch_critic(fake), "bce"
            )
            identity_logits, real_logits = identity_critic(real)
            terms["id"] = terms["id"] + F.cross_entropy(identity_logits, batch["identity"])
            if real_logits is not None:
                terms["id"] = terms["id"] + discriminator_adversarial_loss(
                    real_logits, identity_critic(fake)[1], "bce"
                )
        return LossTerms(terms["patch"] + terms["id"], terms)

    def _perceptual_loss(self) -> nn.Module:
        if "perceptual" not in self._frozen:
            from ..common.pretrained.facenet import FaceNetFeatures, load_facenet

            facenet = load_facenet(
                self.hparams.facenet_weights, allow_random=self.hparams.allow_random_facenet
            )
            self._frozen["perceptual"] = FaceNetPerceptualLoss(FaceNetFeatures(facenet))
        return self._frozen["perceptual"].to(self.device)

    # --- training setup --------------------------------------------------------------------------------

    def configure_optimizers(self):
        h = self.hparams
        generator = (
            self.fuser if self.fuser is not None else nn.ModuleList([self.voice_encoder, self.face_decoder])
        )
        critics = nn.ModuleList([self.patch_critics, self.identity_critics])
        # One Adam over both critics equals one Adam each (Adam is per-parameter) with the same lr/betas.
        return [
            torch.optim.Adam(generator.parameters(), lr=h.lr, betas=tuple(h.betas)),
            torch.optim.Adam(critics.parameters(), lr=h.lr, betas=tuple(h.betas)),
        ]

    def train(self, mode: bool = True):
        """Keep the frozen encoder and decoder in eval mode in the fuser stage (BN statistics stay fixed).

        Lightning restores each submodule's own mode around validation, so setting eval at construction
        and here covers every path.
        """
        super().train(mode)
        if self.hparams.stage == "fuser":
            self.voice_encoder.eval()
            self.face_decoder.eval()
        return self

    def on_fit_start(self) -> None:
        if self.hparams.perceptual_weight > 0:
            self._perceptual_loss()  # fail before the first step when FaceNet weights are missing

    def load_stage_weights(self, path: str) -> None:
        """Initialise every network present in both this model and the checkpoint at `path`."""
        load_stage_weights(
            self,
            path,
            wanted=lambda name: not name.startswith("fuser."),
            must_match="preset, image_size, width_scale and the number of identities",
        )

    # --- evaluation ------------------------------------------------------------------------------------

    def _face_embedder(self) -> nn.Module:
        if "embedder" not in self._frozen:
            self._frozen["embedder"] = build_face_embedder(
                self.hparams.embedder, self.hparams.facenet_weights, self.hparams.allow_random_facenet
            )
        return self._frozen["embedder"].to(self.device)

    def embed_identities(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """An evaluation batch → embeddings of the generated faces and the identities' reference embeddings
        (both `(B, D)`), the generated faces and one real face each (`(B, 3, S, S)`, ImageNet-normalised)."""
        fake = self(batch)[-1]
        embed = self._face_embedder()
        reference_faces = _resize_like(batch["faces"].flatten(0, 1), fake)
        reference = identity_embedding(
            embed(reference_faces).unflatten(0, batch["faces"].shape[:2]), batch["face_mask"]
        )
        return embed(fake).float(), reference.float(), fake, _resize_like(batch["face"], fake)

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        generated, reference, fake, real = self.embed_identities(batch)
        store = self._evaluation.setdefault(split, [])
        store.append((generated, reference, batch["identity"], F.l1_loss(fake, real).item()))
        if batch_idx == 0:
            log_sample_grid(
                self,
                f"{split}/samples",
                [imagenet_to_unit(fake[:8]), imagenet_to_unit(real[:8])],
                caption="top: generated from speech, bottom: a real face of the same identity",
            )

    def evaluation_epoch_end(self, split: str) -> None:
        outputs = self._evaluation.pop(split, [])
        if not outputs:
            return
        generated, reference = self.gather_identities(outputs)
        metrics = {f"{split}/{k}": v for k, v in self.identity_scores(generated, reference).items()}
        metrics[f"{split}/image_l1"] = sum(o[3] for o in outputs) / len(outputs)
        self.log_dict(metrics, sync_dist=True)

    def identity_scores(self, generated: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
        """The paper's cosine, L1 and Recall@K (with their chance levels) of `(N, D)` embeddings, one per
        identity."""
        scores = {
            "l1": float(embedding_l1(generated, reference).mean()),
            "cosine": float(embedding_cosine(generated, reference).mean()),
        }
        if len(generated) >= 2:
            block = self.hparams.recall_block
            scores.update(
                {f"r@{k}": v for k, v in recall_at_k(generated, reference, block_size=block).items()}
            )
            scores.update(
                {f"r@{k}_chance": v for k, v in chance_recall(len(generated), block_size=block).items()}
            )
        return scores

    def paper_evaluation(self, datamodule, vfs_weights: str | None = None):
        """The paper's identity metrics on the test identities, beside Tables 3 and 5 (`evaluation.py`);
        `vfs_weights`, the VGGFace2 ResNet-50 pickle, adds the VGGFace Score."""
        from .evaluation import evaluate

        return evaluate(self, datamodule, vfs_weights=vfs_weights)

    @property
    def speech_rate(self) -> int:
        return LogMelConfig(n_mels=self.hparams.n_mels).sample_rate

    @torch.no_grad()
    def face_from_speech(self, speech: np.ndarray) -> np.ndarray:
        """Any length of speech `(L,)` at `speech_rate` → one face `(S, S, 3)` uint8 at the highest
        resolution: the datamodule's log-mel (after voice-activity detection when it used it), then the
        whole utterance through the encoder (and the fuser's windows)."""
        from datamodules.pipeline.audio import voiced_audio
        from datamodules.pipeline.features import log_mel

        config = LogMelConfig(n_mels=self.hparams.n_mels)
        wave = voiced_audio(speech, config.sample_rate) if self.hparams.vad else speech
        if len(wave) < config.sample_rate // 4:
            wave = speech  # too little voiced speech: use everything rather than fail on a quiet recording
        mel = torch.from_numpy(log_mel(np.asarray(wave, np.float32), config))[None].to(self.device)
        return to_uint8(imagenet_to_unit(self({"mel": mel})[-1]))[0]

    @torch.no_grad()
    def evaluation_samples(
        self, datamodule, split: str = "test", max_items: int | None = None
    ) -> Iterator[GeneratedSample]:
        """For the shared metrics: each identity's face from its evaluation speech, beside all its real faces
        (other pictures, so not frame-aligned)."""
        seen, rate = 0, datamodule.log_mel_config.sample_rate
        for batch in datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader():
            batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            fakes = to_uint8(imagenet_to_unit(self(batch)[-1]))
            for i, identity in enumerate(batch["identity"].tolist()):
                if max_items is not None and seen >= max_items:
                    return
                real = to_uint8(imagenet_to_unit(batch["faces"][i][batch["face_mask"][i]]))
                # read back only if it is played beside the face (`make compare`'s report clips)
                hear = functools.partial(datamodule.evaluation_speech, split, seen)
                yield GeneratedSample(
                    fakes[i : i + 1], real, str(identity), None, rate, paired=False, speech_to_hear=hear
                )
                seen += 1

    def gather_identities(self, outputs: list) -> tuple[torch.Tensor, torch.Tensor]:
        """Generated and reference embeddings of every evaluated identity, across all processes, in order.

        Under DDP each process saw a shard (the sampler pads shards with repeats); retrieval needs the
        whole gallery, so gather everything and keep each identity once.
        """
        generated = torch.cat([o[0] for o in outputs])
        reference = torch.cat([o[1] for o in outputs])
        identity = torch.cat([o[2] for o in outputs])
        # also called outside a Trainer (make eval)
        if self._trainer is not None and self._trainer.world_size > 1:
            generated, reference, identity = (
                self.all_gather(t).flatten(0, 1) for t in (generated, reference, identity)
            )
        order = torch.argsort(identity, stable=True)
        identity = identity[order]
        first = torch.ones_like(identity, dtype=torch.bool)
        first[1:] = identity[1:] != identity[:-1]
        return generated[order][first].cpu(), reference[order][first].cpu()


def _resize_like(images: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest-resize `(B, 3, H, W)` to `like`'s side (the real face at each generated resolution)."""
    if images.shape[-1] == like.shape[-1]:
        return images
    return F.interpolate(images, size=like.shape[-2:], mode="nearest")
