"""HQ-VoxCeleb, SF2F's dataset: identity folders of aligned faces plus VoxCeleb speech.

Layout read (docs/sf2f.md)::

    <root>/vox1_meta.csv                  VoxCeleb's meta: "VoxCeleb1 ID" ↔ "VGGFace1 ID" (the face folder)
    <root>/vox2_meta.csv                  optional; "VoxCeleb2 ID" ↔ "Name" (or "VGGFace2 ID")
    <root>/split.json                     optional {"vox1": {"train": [...], "val": [...], "test": [...]}}
    <root>/vox{1,2}/masked_faces/<Name>/*.jpg
    <root>/vox{1,2}/wav/<VoxCeleb ID>/<clip>/<n>.wav   (VoxCeleb2's .m4a is read too)

Split: `split.json` when present, otherwise the authors' rule on meta row order: row i goes to test when
i % 10 == 8 and to val when i % 10 == 9 (by identity, so no speaker is in two splits).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import DatasetError, pass_dataset
from .voice_face import IdentityFiles, VoiceFaceDataModule

SUBSETS = ("vox1", "vox2")
NAME_COLUMNS = ("VGGFace1 ID", "Name", "VGGFace2 ID")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
SPEECH_SUFFIXES = {".wav", ".flac", ".m4a"}


def split_of_row(row: int) -> str:
    return {8: "test", 9: "val"}.get(row % 10, "train")


def read_meta(path: Path) -> list[tuple[str, str]]:
    """`<subset>_meta.csv` → [(VoxCeleb id, name)] in row order (tab- or comma-separated)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    rows = [
        {k.strip(): (v or "").strip() for k, v in r.items() if k}
        for r in csv.DictReader(text.splitlines(), dialect=dialect)
    ]
    if not rows:
        raise DatasetError(f"{path}: the meta file has no rows. Use VoxCeleb's original meta csv.")
    id_column = next((k for k in rows[0] if k.startswith("VoxCeleb")), None)
    name_column = next((k for k in NAME_COLUMNS if k in rows[0]), None)
    if id_column is None or name_column is None:
        raise DatasetError(
            f"{path}: expected a 'VoxCeleb1 ID'/'VoxCeleb2 ID' column and one of {NAME_COLUMNS}, "
            f"found {list(rows[0])}. Use VoxCeleb's original meta csv."
        )
    return [(r[id_column], r[name_column]) for r in rows]


def _files(folder: Path, suffixes: set[str]) -> tuple[Path, ...]:
    """Media files below `folder`, sorted; hidden files and other junk are ignored."""
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and not p.name.startswith("."))
    )


def _splits_from_json(root: Path, subset: str) -> dict[str, str] | None:
    path = root / "split.json"
    if not path.exists():
        return None
    try:
        per_split = json.loads(path.read_text())[subset]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    return {name: split for split, names in per_split.items() for name in names}


def scan_hq_voxceleb(root: str | Path) -> list[IdentityFiles]:
    """Identities that have both faces and speech, vox1 before vox2, each in meta row order."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: HQ-VoxCeleb root not found. {pass_dataset('folder holding vox1_meta.csv')}"
        )
    identities: list[IdentityFiles] = []
    for subset in SUBSETS:
        meta_path = root / f"{subset}_meta.csv"
        if not meta_path.exists():
            continue
        json_splits = _splits_from_json(root, subset)
        for row, (speaker_id, name) in enumerate(read_meta(meta_path)):
            faces = _files(root / subset / "masked_faces" / name, IMAGE_SUFFIXES)
            speech = _files(root / subset / "wav" / speaker_id, SPEECH_SUFFIXES)
            speech += _files(root / subset / "aac" / speaker_id, SPEECH_SUFFIXES)
            split = json_splits.get(name) if json_splits is not None else split_of_row(row)
            if faces and speech and split:
                identities.append(
                    IdentityFiles(name=f"{subset}/{name}", split=split, faces=faces, speech=speech)
                )
    if not identities:
        raise DatasetError(
            f"{root}: no identity has both masked_faces/<Name>/*.jpg and wav/<VoxCeleb ID>/**/*.wav listed "
            "in vox1_meta.csv or vox2_meta.csv. Check the layout in datamodules/hq_voxceleb.py."
        )
    return identities


class HQVoxCelebDataModule(VoiceFaceDataModule):
    """SF2F's data: one random face and one random utterance (or N windows) per identity per step.

    See `VoiceFaceDataModule` for the arguments; `root=None` uses (and if needed generates) the embedded
    demo dataset in this layout.
    """

    layout = "hq_voxceleb"

    def scan(self, root: Path) -> list[IdentityFiles]:
        return scan_hq_voxceleb(root)
