"""Training-step time of our networks vs. the authors' released ones, same configuration and batch shape.

    python -m benchmarks.official --sf2f-repo PATH --wav2pix-repo PATH [--batch 16] [--device cpu]
                                  [--repeats 5] [--warmup 2] [--systems NAME ...]

What is compared: for each system the networks only, built in the paper setting our experiment configs use,
once from this repository and once from the authors' public code, which the user checks out outside this
repository (nothing of it is committed here; its modules are imported at run time from the given path):

- wav2pix-128: speech encoder + identity classifier + 128 px generator vs. discriminator
  (https://github.com/imatge-upc/wav2pix, the authors' repository; github.com/miqueltubau/Wav2Pix holds
  the same `models/`), ~1 s of 16 kHz audio, LSGAN.
- sf2f-64: 1D-Inception voice encoder + 64 px face decoder vs. patch and identity critics, stage 1 of
  `options/vox/sf2f/sf2f_1st_stage.yaml` (https://github.com/BAI-Yeqi/SF2F_PyTorch), BCE GAN loss.
- sf2f-128-multires: the multi-resolution 64 + 128 px decoder and one pair of critics per resolution,
  `sf2f_mid_1st_stage.yaml`.

How: one training step is the same function for both sides, so only the networks differ: G forward, D on
the real and the detached fake batch (+ the critic's auxiliary loss), D backward and Adam step, D on the fake
again, G loss (adversarial + L1 + auxiliary), G backward and Adam step. Frozen helpers that are not part of
the networks (SF2F's FaceNet perceptual loss) are left out on both sides. Timing uses `benchmarks.timing`;
ours and theirs are measured alternately, one step each, in ABBA order, and the median is reported, so that
load from other processes on a shared machine hits both sides alike. ratio = theirs / ours of the medians:
≥ 1.0 means ours is no slower. Each round also gives a paired ratio (the two adjacent steps); their quartiles
show the noise, and a system is reported slower only when even the upper quartile is below 1.0.

On CPU, part of a step is the kernel handing glibc fresh zeroed pages for large tensors, which depends on
the order of allocations rather than on the arithmetic. To compare compute alone, keep freed memory mapped:
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.timing import Measurement, measure, table
from datamodules.errors import command_errors
from lightning_modules.common.training.losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)

Tensor = torch.Tensor
COLUMNS = [
    "system",
    "batch",
    "G params ours / theirs",
    "D params ours / theirs",
    "ms/step ours",
    "ms/step theirs",
    "ratio theirs/ours",
    "paired ratio p25-p75",
]

WAV2PIX_SAMPLES = 16000  # 1 s at 16 kHz, the released clips' length (docs/wav2pix.md)
WAV2PIX_IDENTITIES = 10  # the authors' classifier hard-codes the 10-identity clean subset
SF2F_MEL_FRAMES = 125  # middle of the 100-150 frame training crops (and the 1.25 s evaluation window)
SF2F_IDENTITIES = 2890  # HQ-VoxCeleb training identities, our module's default
SF2F_CRITIC_ARCH = {64: "C4-64-2,C4-128-2,C4-256-2", 128: "C4-64-2,C4-128-2,C4-256-2,C4-512-2"}


class RepoError(ValueError):
    """The path given for an official repository is missing or is not a checkout of it."""


# ----------------------------------------------------------------------------- the common training step


@dataclass
class Networks:
    """One side of a comparison.

    generate(batch) → (fake images per resolution, condition passed to D or None, G-side auxiliary loss);
    critique(images, condition, batch) → (adversarial logits, critic-side auxiliary loss).
    """

    generator: nn.Module  # everything G's optimiser updates
    critic: nn.Module  # everything D's optimiser updates
    generate: Callable[[dict], tuple[tuple[Tensor, ...], Tensor | None, Tensor]]
    critique: Callable[[tuple[Tensor, ...], Tensor | None, dict], tuple[list[Tensor], Tensor]]


def make_step(
    nets: Networks, batch: dict, loss: str, lrs: tuple[float, float], betas: tuple[float, float]
) -> Callable[[], None]:
    """A closure running one G + D training step of `nets` on `batch` (the same step for ours and theirs)."""
    opt_g = torch.optim.Adam(_trainable(nets.generator), lr=lrs[0], betas=betas)
    opt_d = torch.optim.Adam(_trainable(nets.critic), lr=lrs[1], betas=betas)
    reals = batch["faces"]

    def step() -> None:
        fakes, condition, g_aux = nets.generate(batch)
        frozen = condition.detach() if condition is not None else None  # D's loss never reaches the encoder
        real_logits, d_aux = nets.critique(reals, frozen, batch)
        fake_logits, _ = nets.critique(tuple(f.detach() for f in fakes), frozen, batch)
        d_loss = (
            sum(discriminator_adversarial_loss(r, f, loss) for r, f in zip(real_logits, fake_logits)) + d_aux
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        fake_logits, d_aux_fake = nets.critique(fakes, condition, batch)
        l1 = sum(F.l1_loss(f, r) for f, r in zip(fakes, reals))
        g_loss = sum(generator_adversarial_loss(f, loss) for f in fake_logits) + l1 + g_aux + d_aux_fake
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    # Their Wav2Pix SpectralNorm registers u and v as Parameters with requires_grad=False: not trained.
    return [p for p in module.parameters() if p.requires_grad]


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in _trainable(module))


# ----------------------------------------------------------------------------- importing an official checkout


@contextlib.contextmanager
def _checkout_on_path(repo: Path, packages: tuple[str, ...], stubs: tuple[str, ...] = ()) -> Iterator[None]:
    """Make `repo`'s top-level `packages` importable for the duration, then forget them again.

    The packages are registered as bare namespaces pointing at their folders, so their `__init__.py` (which
    pulls in training-only dependencies such as glog) never runs. Both official repositories call their
    package `models`, so every trace is removed on exit; the classes already imported keep working.
    `stubs` are third-party modules imported only for logging (visdom), replaced by empty modules if absent.
    """
    owned = lambda name: name.split(".")[0] in packages or name in stubs  # noqa: E731
    saved = {name: module for name, module in sys.modules.items() if owned(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(repo))
    try:
        for package in packages:
            namespace = types.ModuleType(package)
            namespace.__path__ = [str(repo / package)]
            sys.modules[package] = namespace
        for name in stubs:
            if importlib.util.find_spec(name) is None:
                sys.modules[name] = types.ModuleType(name)
                sys.modules[name].Visdom = object  # the one name Wav2Pix imports from visdom
        yield
    finally:
        sys.path.remove(str(repo))
        for name in [n for n in sys.modules if owned(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def check_checkout(repo: Path | None, system: System) -> Path:
    """`repo` as a resolved path if it holds `system`'s official network code, else a RepoError naming it."""
    hint = f"get it with: git clone {system.repo_url} <path>  (keep it outside this repository)"
    if repo is None:
        raise RepoError(f"no checkout given for {system.name}; {hint}")
    repo = Path(repo).expanduser().resolve()
    if not repo.is_dir():
        raise RepoError(
            f"{repo} does not exist or is not a folder; {system.name} needs {system.repo_name}: {hint}"
        )
    missing = [f for f in system.required_files if not (repo / f).is_file()]
    if missing:
        raise RepoError(
            f"{repo} is not a checkout of {system.repo_name} (missing {', '.join(missing)}); {hint}"
        )
    return repo


# ----------------------------------------------------------------------------- Wav2Pix


def _wav2pix_batch(batch_size: int, device: torch.device) -> dict:
    return {
        "wav": torch.randn(batch_size, WAV2PIX_SAMPLES, device=device) * 0.1,
        "faces": (torch.rand(batch_size, 3, 128, 128, device=device) * 2 - 1,),
        "identity": torch.randint(0, WAV2PIX_IDENTITIES, (batch_size,), device=device),
    }


def _wav2pix_ours() -> Networks:
    from lightning_modules.wav2pix.networks import (
        FaceDiscriminator,
        FaceGenerator,
        IdentityClassifier,
        SpeechEncoder,
    )

    encoder, classifier = SpeechEncoder(WAV2PIX_SAMPLES), IdentityClassifier(WAV2PIX_IDENTITIES)
    generator, discriminator = FaceGenerator(image_size=128), FaceDiscriminator(image_size=128)

    def generate(batch):
        embedding = encoder(batch["wav"])
        return (generator(embedding),), embedding, F.cross_entropy(classifier(embedding), batch["identity"])

    def critique(images, embedding, batch):
        return [discriminator(images[0], embedding)[0]], images[0].new_zeros(())

    return Networks(nn.ModuleList([encoder, classifier, generator]), discriminator, generate, critique)


def _wav2pix_theirs(repo: Path) -> Networks:
    with _checkout_on_path(repo, ("models", "scripts"), stubs=("visdom",)):
        their_generator = importlib.import_module("models.generator").generator
        their_discriminator = importlib.import_module("models.discriminator").discriminator
        # Their "generator" holds the speech encoder and the identity classifier too, as ours' G side does.
        generator, discriminator = their_generator(128, WAV2PIX_SAMPLES), their_discriminator(128)

    def generate(batch):
        fake, z, identity_logits = generator(batch["wav"])  # z: (B, 128, 1, 1)
        return (fake,), z, F.cross_entropy(identity_logits, batch["identity"])

    def critique(images, z, batch):
        return [discriminator(images[0], z)[0]], images[0].new_zeros(())

    return Networks(generator, discriminator, generate, critique)


# ----------------------------------------------------------------------------- SF2F


def _sf2f_batch(resolutions: tuple[int, ...]) -> Callable[[int, torch.device], dict]:
    def make(batch_size: int, device: torch.device) -> dict:
        return {
            "mel": torch.randn(batch_size, 40, SF2F_MEL_FRAMES, device=device),
            "faces": tuple(torch.randn(batch_size, 3, r, r, device=device) for r in resolutions),
            "identity": torch.randint(0, SF2F_IDENTITIES, (batch_size,), device=device),
        }

    return make


def _sf2f_ours(multires: bool) -> Networks:
    from lightning_modules.sf2f.networks import (
        sf2f_face_decoder,
        sf2f_identity_discriminator,
        sf2f_patch_discriminator,
        sf2f_voice_encoder,
    )

    resolutions = (64, 128) if multires else (64,)
    encoder = sf2f_voice_encoder("official")
    decoder = sf2f_face_decoder("official", resolution=resolutions[-1], multires=multires)
    patches = nn.ModuleList(sf2f_patch_discriminator("official", image_size=r) for r in resolutions)
    identities = nn.ModuleList(
        sf2f_identity_discriminator(SF2F_IDENTITIES, "official", image_size=r) for r in resolutions
    )

    def generate(batch):
        return decoder(encoder(batch["mel"])), None, batch["mel"].new_zeros(())

    def critique(images, _, batch):
        logits, aux = [], images[0].new_zeros(())
        for image, patch, identity in zip(images, patches, identities):
            identity_logits, real_logits = identity(image)
            logits += [patch(image), real_logits]
            aux = aux + F.cross_entropy(identity_logits, batch["identity"])
        return logits, aux

    return Networks(
        nn.ModuleList([encoder, decoder]), nn.ModuleList([patches, identities]), generate, critique
    )


def _sf2f_theirs(repo: Path, multires: bool) -> Networks:
    resolutions = (64, 128) if multires else (64,)
    critic_options = dict(normalization="batch", padding="valid", activation="leakyrelu-0.1")
    with _checkout_on_path(repo, ("models", "utils")):
        voice_encoders = importlib.import_module("models.voice_encoders")
        face_decoders = importlib.import_module("models.face_decoders")
        discriminators = importlib.import_module("models.discriminators")
        # The options of sf2f_1st_stage.yaml / sf2f_mid_1st_stage.yaml, as their build_model passes them.
        encoder = voice_encoders.V2F1DCNN(
            input_channel=40,
            channels=[256, 384, 576, 864],
            output_channel=512,
            normalize_embedding=True,
            inception_mode=True,
        )
        decoder_class = face_decoders.FaceGanDecoder_v2 if multires else face_decoders.FaceGanDecoder
        decoder = decoder_class(
            image_size=(resolutions[0],) * 2,
            noise_dim=512,
            mlp_normalization="none",
            normalization="batch",
            activation="leakyrelu-0.1",
        )
        patches = nn.ModuleList(
            discriminators.PatchDiscriminator(arch=SF2F_CRITIC_ARCH[r], **critic_options) for r in resolutions
        )
        identities = nn.ModuleList(
            discriminators.AcDiscriminator(arch=SF2F_CRITIC_ARCH[r], num_id=SF2F_IDENTITIES, **critic_options)
            for r in resolutions
        )

    def generate(batch):
        images = decoder(encoder(batch["mel"]))
        return (images if isinstance(images, tuple) else (images,)), None, batch["mel"].new_zeros(())

    def critique(images, _, batch):
        logits, aux = [], images[0].new_zeros(())
        for image, patch, identity in zip(images, patches, identities):
            # Their identity critic computes the cross-entropy itself.
            real_logits, identity_loss = identity(image, batch["identity"])
            logits += [patch(image), real_logits]
            aux = aux + identity_loss
        return logits, aux

    return Networks(
        nn.ModuleList([encoder, decoder]), nn.ModuleList([patches, identities]), generate, critique
    )


# ----------------------------------------------------------------------------- systems


@dataclass
class System:
    name: str
    repo_option: str  # the CLI option giving the checkout
    repo_name: str
    repo_url: str
    required_files: tuple[str, ...]
    loss: str
    lrs: tuple[float, float]  # G, D (the experiment configs'; they do not change the step time)
    betas: tuple[float, float]
    make_batch: Callable[[int, torch.device], dict]
    build_ours: Callable[[], Networks]
    build_theirs: Callable[[Path], Networks]
    parameter_note: str  # why the counts may differ, from reading both codes


_SF2F_URL = "https://github.com/BAI-Yeqi/SF2F_PyTorch"
_SF2F_FILES = (
    "models/voice_encoders.py",
    "models/face_decoders.py",
    "models/discriminators.py",
    "models/layers.py",
)
_SF2F_NOTE = (
    "sf2f: preset `official` of lightning_modules/sf2f/networks.py follows their code layer for "
    "layer (GLU up-blocks, valid-padded LeakyReLU(0.1) critics), so the counts match."
)
SYSTEMS = {
    "wav2pix-128": System(
        "wav2pix-128",
        "wav2pix_repo",
        "Wav2Pix's official repository",
        "https://github.com/imatge-upc/wav2pix",
        ("models/generator.py", "models/discriminator.py", "models/segan.py", "models/spectral_norm.py"),
        "lsgan",
        (1e-4, 4e-4),
        (0.5, 0.999),
        _wav2pix_batch,
        _wav2pix_ours,
        _wav2pix_theirs,
        "wav2pix: same layers; their SpectralNorm keeps u and v as frozen nn.Parameters (ours: buffers), so "
        "only trainable parameters are counted.",
    ),
    "sf2f-64": System(
        "sf2f-64",
        "sf2f_repo",
        "SF2F's official repository",
        _SF2F_URL,
        _SF2F_FILES,
        "bce",
        (5e-4, 5e-4),
        (0.9, 0.98),
        _sf2f_batch((64,)),
        lambda: _sf2f_ours(False),
        lambda repo: _sf2f_theirs(repo, False),
        _SF2F_NOTE,
    ),
    "sf2f-128-multires": System(
        "sf2f-128-multires",
        "sf2f_repo",
        "SF2F's official repository",
        _SF2F_URL,
        _SF2F_FILES,
        "bce",
        (5e-4, 5e-4),
        (0.9, 0.98),
        _sf2f_batch((64, 128)),
        lambda: _sf2f_ours(True),
        lambda repo: _sf2f_theirs(repo, True),
        _SF2F_NOTE,
    ),
}


def _build(system: System, side: str, repo: Path | None, device: torch.device) -> Networks:
    torch.manual_seed(0)
    nets = system.build_ours() if side == "ours" else system.build_theirs(repo)
    nets.generator.to(device).train()
    nets.critic.to(device).train()
    return nets


def time_ours(
    name: str, batch_size: int, device: torch.device, repeats: int = 3, warmup: int = 1
) -> Measurement:
    """Seconds per training step of our networks alone (what CI can run without the official checkouts)."""
    system = SYSTEMS[name]
    nets = _build(system, "ours", None, device)
    step = make_step(nets, system.make_batch(batch_size, device), system.loss, system.lrs, system.betas)
    return measure(step, device, repeats=repeats, warmup=warmup)


def compare(name: str, repo: Path, batch_size: int, device: torch.device, repeats: int, warmup: int) -> dict:
    """One table row: both sides on the same batch, timed alternately (ABBA) one step at a time."""
    system = SYSTEMS[name]
    batch = system.make_batch(batch_size, device)
    sides = {side: _build(system, side, repo, device) for side in ("ours", "theirs")}
    steps = {
        side: make_step(nets, batch, system.loss, system.lrs, system.betas) for side, nets in sides.items()
    }
    for side in sides:
        measure(steps[side], device, repeats=1, warmup=warmup)
    seconds: dict[str, list[float]] = {"ours": [], "theirs": []}
    for index in range(repeats):
        order = ("ours", "theirs") if index % 2 == 0 else ("theirs", "ours")
        for side in order:
            seconds[side].append(measure(steps[side], device, repeats=1, warmup=0).seconds)
    ours, theirs = (_median(seconds[s]) for s in ("ours", "theirs"))
    paired = sorted(t / o for o, t in zip(seconds["ours"], seconds["theirs"]))
    count = lambda attr: " / ".join(  # noqa: E731
        f"{trainable_parameters(getattr(sides[s], attr)) / 1e6:.3f}M" for s in ("ours", "theirs")
    )
    return {
        "system": name,
        "batch": batch_size,
        "G params ours / theirs": count("generator"),
        "D params ours / theirs": count("critic"),
        "ms/step ours": round(ours * 1e3),
        "ms/step theirs": round(theirs * 1e3),
        "ratio theirs/ours": theirs / ours,
        "paired ratio p25-p75": f"{_quantile(paired, 0.25):.3f}-{_quantile(paired, 0.75):.3f}",
        "_upper_ratio": _quantile(paired, 0.75),
        "_counts": {
            s: (trainable_parameters(n.generator), trainable_parameters(n.critic)) for s, n in sides.items()
        },
    }


def _median(values: list[float]) -> float:
    return _quantile(sorted(values), 0.5)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _parameter_notes(rows: list[dict]) -> list[str]:
    notes = []
    for row in rows:
        ours, theirs = row["_counts"]["ours"], row["_counts"]["theirs"]
        if ours == theirs:
            notes.append(
                f"- {row['system']}: identical trainable parameter counts "
                f"(G {ours[0]:,}, D {ours[1]:,}). {SYSTEMS[row['system']].parameter_note}"
            )
        else:
            notes.append(
                f"- {row['system']}: G {ours[0]:,} vs {theirs[0]:,}, "
                f"D {ours[1]:,} vs {theirs[1]:,}. {SYSTEMS[row['system']].parameter_note}"
            )
    return notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.official",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sf2f-repo", type=Path, help="checkout of github.com/BAI-Yeqi/SF2F_PyTorch")
    parser.add_argument("--wav2pix-repo", type=Path, help="checkout of github.com/imatge-upc/wav2pix")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=sorted(SYSTEMS),
        help="default: every system whose repository is given",
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side (interleaved)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    names = args.systems or [n for n, s in SYSTEMS.items() if getattr(args, s.repo_option) is not None]
    if not names:
        parser.error("give --sf2f-repo and/or --wav2pix-repo (checkouts of the official repositories)")
    try:
        repos = {n: check_checkout(getattr(args, SYSTEMS[n].repo_option), SYSTEMS[n]) for n in names}
    except RepoError as error:
        parser.error(str(error))

    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"median of {args.repeats} interleaved steps after {args.warmup} warm-up steps\n",
        flush=True,
    )
    rows = []
    for name in names:
        rows.append(compare(name, repos[name], args.batch, device, args.repeats, args.warmup))
        print(
            f"{name}: ours {rows[-1]['ms/step ours']:.0f} ms, theirs {rows[-1]['ms/step theirs']:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
    print(table(rows, COLUMNS))
    print("\nParameters (trainable; G = every module G's Adam updates, D = the critics):")
    print("\n".join(_parameter_notes(rows)))
    slower = [r["system"] for r in rows if r["_upper_ratio"] < 1.0]
    noisy = [r["system"] for r in rows if r["ratio theirs/ours"] < 1.0 <= r["_upper_ratio"]]
    print(
        "\nours slower than theirs (even the upper paired quartile < 1.0) on: "
        + (", ".join(slower) or "none")
    )
    if noisy:
        print("median ratio below 1.0 but within the paired spread (noise) on: " + ", ".join(noisy))


if __name__ == "__main__":
    with command_errors():
        main()
