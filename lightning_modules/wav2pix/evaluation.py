"""Wav2Pix's evaluation protocol, run by `make eval EXP=wav2pix CKPT=…`.

1. Identity accuracy: a classifier fitted on the real training faces names the identity of each face
   generated from (a) training-partition speech and (b) test-partition speech; top-1 against the speaker.
   Its control (not in the paper) scores the faces from speaker k+1's test speech as speaker k's: what a
   generator that ignores the speech reaches (chance), whichever faces it draws.
2. Landmark detection rate: share of faces generated from test speech in which dlib finds all 68 points
   (`common/metrics/face_checks.py`), reported per speech length (the paper's 300 / 700 / 1000 ms sweep is one
   checkpoint per length).
3. Open-set R@1 (not in the paper), when the datamodule holds youtubers out of training
   (`open_set_speakers`): each face generated from a held-out youtuber's test-partition speech is embedded
   (`open_set_embedder`) and retrieved by cosine among the held-out youtubers' references, each the
   normalised mean embedding of all its real faces; R@1 is the share of faces whose own youtuber comes first,
   averaged over youtubers. Its control retrieves the faces from the next held-out youtuber's speech as this
   one's: a generator that ignores the voice scores chance there, whatever it draws.
Sanity bounds measured on real faces in the same run: detection rate and probe accuracy on real test faces,
and with an open set, the open-set R@1 of the held-out youtubers' real test faces.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from datamodules.errors import DatasetError
from datamodules.youtubers import YoutubersDataModule

from ..common.images import unit_to_imagenet
from ..common.metrics.face_checks import face_found
from ..common.metrics.identity_metrics import chance_recall, identity_embedding, recall_hits
from ..common.metrics.identity_probe import build_probe
from ..common.metrics.reports import EvaluationReport, ResultRow
from ..common.pretrained.face_embedding import build_face_embedder

PAPER_IDENTITY_ACCURACY = {"train": 76.81, "test": 50.08}
PAPER_DETECTION_RATE = {4800: 81.16, 11200: 89.12, 16000: 90.25}
CONTROL_SETTING = "control: test speech of another speaker"
OPEN_SET_METRIC = "open-set R@1 (%)"
OPEN_SET_CHANCE_METRIC = "open-set R@1 chance (%)"
OPEN_SET_REAL_METRIC = "sanity: open-set R@1 of real test faces (%)"
OPEN_SET_SETTING = "test speech of held-out speakers"
OPEN_SET_CONTROL_SETTING = "control: test speech of the next held-out speaker"


@torch.no_grad()
def _generate(module, dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generated faces, real faces (both `(N, 3, S, S)` in [0, 1]) and speaker indices `(N,)`."""
    fakes, reals, identities = [], [], []
    for batch in DataLoader(dataset, batch_size=64, shuffle=False):
        fakes.append((module(batch["audio"].to(module.device)).cpu() + 1) / 2)
        reals.append((batch["face"] + 1) / 2)
        identities.append(batch["identity"])
    return torch.cat(fakes).clamp(0, 1), torch.cat(reals), torch.cat(identities)


def _real_faces(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Real faces `(N, 3, S, S)` in [0, 1] and speaker indices `(N,)` of every pair of `dataset`."""
    batches = list(DataLoader(dataset, batch_size=64, shuffle=False))
    return torch.cat([(b["face"] + 1) / 2 for b in batches]), torch.cat([b["identity"] for b in batches])


def _by_speaker(embeddings: torch.Tensor, speakers: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    """`(N, D)` embeddings of speakers `(N,)` in `range(count)` → `(count, K, D)`, each speaker's rows in
    order, zero-padded to the largest count K, and the `(count, K)` mask of the rows that are real."""
    counts = torch.bincount(speakers, minlength=count)
    grouped = embeddings.new_zeros(count, int(counts.max()), embeddings.shape[1])
    for speaker in range(count):
        own = embeddings[speakers == speaker]
        grouped[speaker, : len(own)] = own
    return grouped, torch.arange(grouped.shape[1]) < counts[:, None]


def _open_set_references(
    datamodule: YoutubersDataModule, test_embeddings: torch.Tensor, test_speakers: torch.Tensor, embed
) -> torch.Tensor:
    """`(count, D)`: each held-out youtuber's normalised mean embedding over all its real faces: those of
    its training-partition pairs (never trained on), embedded here, and its test-partition faces, already
    embedded `(N, D)`, whose speakers are `(N,)`. `embed` maps faces in [0, 1] to unit-norm `(N, D)`."""
    train_faces, train_speakers = _real_faces(datamodule.evaluation_dataset("open_set_train"))
    embeddings = torch.cat([embed(train_faces), test_embeddings])
    speakers = torch.cat([train_speakers, test_speakers])
    return identity_embedding(*_by_speaker(embeddings, speakers, len(datamodule.open_set_identities)))


def _retrieval_rounds(
    queries: torch.Tensor, counts: torch.Tensor, reference: torch.Tensor
) -> tuple[list[list[float]], list[list[float]]]:
    """Per youtuber, per query: 1.0 where its own reference is the nearest, and the same for the next
    youtuber's query in its place (the control). `queries` `(count, K, D)` zero-padded, `counts` `(count,)`
    its real rows (each ≥ 1), `reference` `(count, D)`.

    Retrieval runs in rounds, as SF2F's protocol scores one clip per identity at a time: round r queries
    each youtuber's r-th face (its faces cycle when it has fewer than the others), and a youtuber keeps the
    values of the rounds up to its own count."""
    count = len(reference)
    own, control = [[] for _ in range(count)], [[] for _ in range(count)]
    for round_ in range(int(counts.max())):
        generated = queries[torch.arange(count), round_ % counts]  # (count, D): a face per youtuber
        hits = recall_hits(generated, reference, 1, block_size=count)
        control_hits = recall_hits(generated.roll(-1, 0), reference, 1, block_size=count)
        for speaker in range(count):
            if round_ < counts[speaker]:
                own[speaker].append(float(hits[speaker]))
                control[speaker].append(float(control_hits[speaker]))
    return own, control


@torch.no_grad()
def open_set_hits(
    module,
    datamodule: YoutubersDataModule,
    embedder: str = "thumbnail",
    facenet_weights: str | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Per held-out youtuber (by name), one value per test-partition pair, in order: "r@1" is 1.0 where the
    face generated from its speech retrieves this youtuber first among the held-out ones, "r@1_control" the
    same for the face from the next held-out youtuber's speech (cycling through that one's pairs), and
    "r@1_real" the same for the pair's real face (a sanity bound of the embedder)."""
    names = datamodule.open_set_identities
    face_embedder = build_face_embedder(embedder, facenet_weights)

    def embed(faces: torch.Tensor) -> torch.Tensor:
        return face_embedder(unit_to_imagenet(faces))

    fake, real, speakers = _generate(module, datamodule.evaluation_dataset("open_set_test"))
    queries, present = _by_speaker(embed(fake), speakers, len(names))
    counts = present.sum(1)
    if missing := [name for name, count in zip(names, counts.tolist()) if count == 0]:
        raise DatasetError(
            f"held-out youtubers {missing} have no test pair left after preprocessing, so the open set "
            "cannot query them. Hold out others (--data.init_args.open_set_speakers) or restore their pairs."
        )
    real_embeddings = embed(real)  # the gallery's test-partition half and the real-face sanity queries
    reference = _open_set_references(datamodule, real_embeddings, speakers, embed)
    own, control = _retrieval_rounds(queries, counts, reference)
    real_own, _ = _retrieval_rounds(_by_speaker(real_embeddings, speakers, len(names))[0], counts, reference)
    return {
        name: {"r@1": own[k], "r@1_control": control[k], "r@1_real": real_own[k]}
        for k, name in enumerate(names)
    }


def open_set_rows(hits: dict[str, dict[str, list[float]]], embedder: str) -> list[ResultRow]:
    """R@1, its control, its chance and the real faces' R@1 (%): each youtuber's mean over its test pairs,
    averaged over youtubers (each weighs the same, as a bootstrap over youtubers resamples them)."""
    mean = {
        key: 100 * sum(sum(v[key]) / len(v[key]) for v in hits.values()) / len(hits)
        for key in ("r@1", "r@1_control", "r@1_real")
    }
    count = len(hits)
    note = (
        f"{count} held-out speakers (never trained on), {embedder} embedding; gallery: their mean real faces"
    )
    return [
        ResultRow(OPEN_SET_METRIC, OPEN_SET_SETTING, mean["r@1"], None, note),
        ResultRow(
            OPEN_SET_METRIC,
            OPEN_SET_CONTROL_SETTING,
            mean["r@1_control"],
            None,
            f"faces from speaker k+1's speech retrieved as speaker k's (a voice-blind model's score); {note}",
        ),
        ResultRow(OPEN_SET_CHANCE_METRIC, OPEN_SET_SETTING, 100 * chance_recall(count, (1,), count)[1]),
        ResultRow(OPEN_SET_REAL_METRIC, "real faces", mean["r@1_real"], None, note),
    ]


def closed_set_hits(
    predicted: torch.Tensor, speakers: torch.Tensor, control_speakers: torch.Tensor, names: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Per youtuber (by name), one value per face generated from its test-partition speech, in order:
    "accuracy" 1.0 where the probe named the speaker, "accuracy_control" 1.0 where it named
    `control_speakers`' entry (the control's reading). `predicted`, `speakers`, `control_speakers`: `(N,)`;
    what a proof resamples youtubers from."""
    hits = {}
    for index, name in enumerate(names):
        own = speakers == index
        hits[name] = {
            "accuracy": (predicted[own] == index).float().tolist(),
            "accuracy_control": (predicted[own] == control_speakers[own]).float().tolist(),
        }
    return hits


def evaluate(
    module,
    datamodule: YoutubersDataModule,
    probe: str = "cnn",
    open_set_embedder: str = "thumbnail",
    facenet_weights: str | None = None,
) -> EvaluationReport:
    module.eval()
    generated = {
        split: _generate(module, datamodule.evaluation_dataset(split)) for split in ("train", "test")
    }
    real_train, train_ids = generated["train"][1], generated["train"][2]
    classifier = build_probe(probe).fit(real_train, train_ids)
    predicted = {split: classifier.predict(fake) for split, (fake, _, _) in generated.items()}
    accuracy = {
        split: 100 * (predicted[split] == ids).float().mean().item()
        for split, (_, _, ids) in generated.items()
    }
    fake_test, real_test, test_ids = generated["test"]
    another_speaker = (test_ids - 1) % datamodule.num_identities  # the face from k+1's speech, named as k
    control = 100 * (predicted["test"] == another_speaker).float().mean().item()
    detection = 100 * face_found(fake_test).float().mean().item()
    chance = 100 / datamodule.num_identities
    samples = datamodule.hparams.audio_samples
    report = EvaluationReport(
        system="Wav2Pix", dataset=datamodule.description, paper_dataset="real Youtubers, 10 ids"
    )
    note = f"probe: {classifier.name}; chance {chance:.1f}%"
    report.rows += [
        ResultRow(
            "identity accuracy (%)",
            "speech from train partition",
            accuracy["train"],
            PAPER_IDENTITY_ACCURACY["train"],
            note,
        ),
        ResultRow(
            "identity accuracy (%)",
            "speech from test partition",
            accuracy["test"],
            PAPER_IDENTITY_ACCURACY["test"],
            note,
        ),
        ResultRow(
            "identity accuracy (%)",
            CONTROL_SETTING,
            control,
            None,
            f"faces from speaker k+1's test speech scored as speaker k's; {note}",
        ),
        ResultRow(
            "landmark detection rate (%)",
            f"test speech, {samples / 16:.0f} ms",
            detection,
            PAPER_DETECTION_RATE.get(samples),
            "dlib HOG + 68 points, 64-px border",
        ),
        ResultRow(
            "sanity: detection rate on real test faces (%)",
            "real faces",
            100 * face_found(real_test).float().mean().item(),
        ),
        ResultRow(
            "sanity: probe accuracy on real test faces (%)",
            "real faces",
            100 * (classifier.predict(real_test) == test_ids).float().mean().item(),
        ),
    ]
    report.details = {
        "audio_samples": samples,
        "image_size": datamodule.hparams.image_size,
        "probe": probe,
        "generated": {split: len(g[0]) for split, g in generated.items()},
        "chance_accuracy": chance,
        "test_hits": closed_set_hits(predicted["test"], test_ids, another_speaker, datamodule.identities),
    }
    if datamodule.open_set_identities:
        hits = open_set_hits(module, datamodule, open_set_embedder, facenet_weights)
        report.rows += open_set_rows(hits, open_set_embedder)
        report.details |= {"open_set": hits, "open_set_embedder": open_set_embedder}
    return report
