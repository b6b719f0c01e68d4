"""SF2F's test protocol, run by `make eval EXP=sf2f CKPT=…`.

Every test identity's face is generated from a clip of its speech (stage 1: 1.25 s; with the fuser: 5 s,
as N windows of 1.25 s at hop 63), embedded, and compared with the identity's reference embedding (the
normalised mean over all its real faces): cosine, L1 and Recall@K in blocks of 100 identities. As in the
paper, each of `runs` runs draws one random clip per identity, and every metric is the mean over the runs
(± their standard deviation in the note). The VGGFace Score (VFS) is the Inception Score with the VGGFace2
ResNet-50 identity classifier (`vfs_weights`, resnet50_ft_weight.pkl): per run, the faces are shuffled into
5 splits, each scored, and the splits averaged; without the weights it is listed as not computed.
The paper's numbers (Tables 3 and 5) use FaceNet VGGFace2 on HQ-VoxCeleb's 378 test identities; with
another embedder (`embedder: dlib` or `thumbnail`) ours are a proxy and are marked as not comparable.
"""

from __future__ import annotations

import numpy as np
import torch

from ..common.images import imagenet_to_unit
from ..common.metrics.face_checks import to_uint8
from ..common.metrics.reports import EvaluationReport, ResultRow
from ..common.pretrained.vggface2 import VGGFACE2_FILE, identity_probabilities, load_vggface2_classifier

METRICS = ("cosine", "l1", "r@1", "r@2", "r@5", "r@10")
# (stage, output side, multi-resolution) → the paper's row: cosine, L1, R@1, R@2, R@5, R@10 (%).
PAPER_ROWS = {
    ("encoder_decoder", 64, False): (
        "Table 3, SF2F (no fuser), 1.25 s",
        (0.304, 19.22, 5.32, 8.10, 19.27, 32.80),
    ),
    ("fuser", 64, False): ("Table 3, SF2F, 5 s", (0.317, 17.91, 5.75, 9.32, 20.36, 36.65)),
    ("fuser", 128, False): ("Table 5, single-res 128", (0.278, 18.54, 5.02, 8.60, 19.43, 32.25)),
    ("fuser", 128, True): ("Table 5, multi-res 128", (0.313, 17.46, 6.10, 9.25, 18.77, 35.38)),
}

# The same rows' VGGFace Score (mean over runs; the paper gives ± its spread).
PAPER_VFS = {
    ("encoder_decoder", 64, False): 18.59,
    ("fuser", 64, False): 19.49,
    ("fuser", 128, False): 18.53,
    ("fuser", 128, True): 20.10,
}
VFS_SPLITS = 5


def vgg_face_score(probabilities: np.ndarray, rng: np.random.Generator, splits: int = VFS_SPLITS) -> float:
    """The VGGFace Score of `(N, C)` class probabilities: the faces shuffled into `splits` parts, each scored
    exp(mean over its faces of KL(p(y|x) ‖ p(y))), p(y) the part's mean, and the parts averaged."""
    scores = []
    for part in np.array_split(probabilities[rng.permutation(len(probabilities))], splits):
        if len(part):
            marginal = part.mean(axis=0, keepdims=True)
            divergence = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
            scores.append(float(np.exp(divergence.mean())))
    return float(np.mean(scores))


@torch.no_grad()
def embed_run(module, loader, classifier=None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """One evaluation run over `loader`: the generated and reference embeddings `(N, D)`, one per identity
    in identity order, and with a VGGFace2 `classifier` the generated faces' class probabilities `(N, C)`."""
    outputs, probabilities = [], []
    for batch in loader:
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        generated, reference, fake, _ = module.embed_identities(batch)
        outputs.append((generated, reference, batch["identity"]))
        if classifier is not None:
            faces = torch.from_numpy(to_uint8(imagenet_to_unit(fake))).permute(0, 3, 1, 2)
            probabilities.append(identity_probabilities(classifier, faces).cpu().numpy())
    generated, reference = module.gather_identities(outputs)
    return generated, reference, np.concatenate(probabilities) if probabilities else None


def run_scores(module, loader, classifier=None) -> tuple[dict[str, float], int, np.ndarray | None]:
    """The identity scores of one evaluation run over `loader`, the number of identities, and the class
    probabilities of `embed_run`. `r@1_control` scores each identity's face generated from the next
    identity's speech: what a model whose faces ignore the voice reaches (chance, up to the ties of
    identical faces)."""
    generated, reference, probabilities = embed_run(module, loader, classifier)
    scores = module.identity_scores(generated, reference)
    if "r@1" in scores:  # retrieval needs two identities
        scores["r@1_control"] = module.identity_scores(generated.roll(-1, 0), reference)["r@1"]
    return scores, len(generated), probabilities


@torch.no_grad()
def evaluate(module, datamodule, runs: int = 10, vfs_weights: str | None = None) -> EvaluationReport:
    module.eval()
    classifier = load_vggface2_classifier(vfs_weights).to(module.device) if vfs_weights else None
    per_run = []
    for run in range(runs):
        scores, identities, probabilities = run_scores(
            module, datamodule.random_clip_test_loader(run), classifier
        )
        if probabilities is not None:
            scores["vfs"] = vgg_face_score(probabilities, np.random.default_rng(run))
        per_run.append(scores)
    mean = {key: float(np.mean([s[key] for s in per_run])) for key in per_run[0]}
    spread = {key: float(np.std([s[key] for s in per_run])) for key in per_run[0]}
    hp = module.hparams
    row_name, paper = PAPER_ROWS.get((hp.stage, hp.image_size, hp.multires), (None, (None,) * len(METRICS)))
    comparable = hp.embedder == "facenet"
    note = (
        f"FaceNet; paper: {row_name}"
        if comparable and row_name
        else f"embedder {hp.embedder}: a proxy, not comparable with the paper's FaceNet numbers"
    )
    report = EvaluationReport(
        system="SF2F", dataset=datamodule.description, paper_dataset="HQ-VoxCeleb test, 378 identities"
    )
    setting = (
        f"{hp.stage}, {hp.image_size} px{' multi-res' if hp.multires else ''}, {identities} identities, "
        f"mean of {runs} runs of one random clip each"
    )
    for metric, paper_value in zip(METRICS, paper):
        scale = 100 if metric.startswith("r@") else 1
        ours = scale * mean.get(metric, float("nan"))
        report.rows.append(
            ResultRow(
                f"{metric}{' (%)' if scale == 100 else ''}",
                setting,
                ours,
                paper_value if comparable else None,
                f"{note}; ± {scale * spread.get(metric, float('nan')):.3g} over runs",
            )
        )
    for k in (1, 2, 5, 10):
        if f"r@{k}_chance" in mean:
            report.rows.append(ResultRow(f"r@{k} chance (%)", setting, 100 * mean[f"r@{k}_chance"]))
    if "r@1_control" in mean:
        report.rows.append(
            ResultRow(
                "r@1 control (%)",
                setting,
                100 * mean["r@1_control"],
                None,
                "each face generated from the next identity's speech (a voice-blind model's score)",
            )
        )
    vfs_note = (
        f"VGGFace2 ResNet-50, {VFS_SPLITS} splits; ± {spread['vfs']:.3g} over runs"
        if "vfs" in mean
        else f"not computed: needs the VGGFace2 classifier ({VGGFACE2_FILE}): --option vfs_weights=PATH"
    )
    report.rows.append(
        ResultRow(
            "VFS",
            setting,
            mean.get("vfs", float("nan")),
            PAPER_VFS.get((hp.stage, hp.image_size, hp.multires)),
            vfs_note,
        )
    )
    report.details = {
        "identities": identities,
        "embedder": hp.embedder,
        "runs": runs,
        "scores": mean,
        "std": spread,
        "per_run": per_run,
    }
    return report
