"""SF2F's test protocol (spec §7), run by `make eval EXP=sf2f CKPT=…`.

Every test identity's face is generated from its evaluation speech (stage 1: the first window; with the
fuser: N windows of 1.25 s at hop 63), embedded, and compared with the identity's reference embedding
(the normalised mean over all its real faces): cosine, L1 and Recall@K in blocks of 100 identities.
The paper's numbers (Tables 3 and 5) use FaceNet VGGFace2 on HQ-VoxCeleb's 378 test identities; with
another embedder (`embedder: dlib` or `thumbnail`) ours are a proxy and are marked as not comparable.
"""

from __future__ import annotations

import torch

from ..common.reports import EvaluationReport, ResultRow

METRICS = ("cosine", "l1", "r@1", "r@2", "r@5", "r@10")
# (stage, output side, multi-resolution) → the paper's row: cosine, L1, R@1, R@2, R@5, R@10 (%).
PAPER_ROWS = {
    ("encoder_decoder", 64, False): ("Table 3, SF2F (no fuser), 1.25 s", (0.304, 19.22, 5.32, 8.10, 19.27, 32.80)),
    ("fuser", 64, False): ("Table 3, SF2F, 5 s", (0.317, 17.91, 5.75, 9.32, 20.36, 36.65)),
    ("fuser", 128, False): ("Table 5, single-res 128", (0.278, 18.54, 5.02, 8.60, 19.43, 32.25)),
    ("fuser", 128, True): ("Table 5, multi-res 128", (0.313, 17.46, 6.10, 9.25, 18.77, 35.38)),
}


@torch.no_grad()
def evaluate(module, datamodule) -> EvaluationReport:
    module.eval()
    outputs = []
    for batch in datamodule.test_dataloader():
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        generated, reference, _, _ = module.embed_identities(batch)
        outputs.append((generated, reference, batch["identity"]))
    generated, reference = module.gather_identities(outputs)
    scores = module.identity_scores(generated, reference)
    hp = module.hparams
    row_name, paper = PAPER_ROWS.get((hp.stage, hp.image_size, hp.multires), (None, (None,) * len(METRICS)))
    comparable = hp.embedder == "facenet"
    note = (f"FaceNet; paper: {row_name}" if comparable and row_name else
            f"embedder {hp.embedder}: a proxy, not comparable with the paper's FaceNet numbers")
    report = EvaluationReport(system="SF2F", dataset=datamodule.description,
                              paper_dataset="HQ-VoxCeleb test, 378 identities")
    setting = f"{hp.stage}, {hp.image_size} px{' multi-res' if hp.multires else ''}, {len(generated)} identities"
    for metric, paper_value in zip(METRICS, paper):
        ours = scores.get(metric, float("nan"))
        if metric.startswith("r@"):
            ours *= 100
        report.rows.append(ResultRow(f"{metric}{' (%)' if metric.startswith('r@') else ''}", setting, ours,
                                     paper_value if comparable else None, note))
    for k in (1, 2, 5, 10):
        if f"r@{k}_chance" in scores:
            report.rows.append(ResultRow(f"r@{k} chance (%)", setting, 100 * scores[f"r@{k}_chance"]))
    report.details = {"identities": len(generated), "embedder": hp.embedder, "scores": scores}
    return report
