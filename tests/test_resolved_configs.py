"""What every stage of every experiment trains, pinned: the configs `make train` stacks for each stage,
resolved and completed with the model's and datamodule's own defaults, must match the fingerprints in
`tests/resolved_configs.json`, in the real-data, demo and smoke settings.

The fingerprints were recorded before a variant's changes were written once for its whole chain (the
stage files `sf2f_multires_fuser`, `e2e_nr_base_adv` and `e2e_nr_grid_adv` went, and `sf2f_fuser` now
extends `sf2f`); the same fingerprints after that change show it moved no value any stage trains with.

A deliberate config change fails here by name; record it with
`.venv/bin/python -m tests.test_resolved_configs --write` and let the diff of the JSON show which stages
it touched.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path

import pytest
import yaml

from experiments import configs

RECORD = Path(__file__).with_name("resolved_configs.json")
SETTINGS = {"data": (False, False), "demo": (True, False), "smoke": (True, True)}


def completed(resolved: dict) -> dict:
    """`resolved` with each `model` and `data` section's unset arguments filled with the class's defaults,
    so a value moved between files, or stated where the default already gives it, is the same config."""
    for section in ("model", "data"):
        part = resolved.get(section)
        if not part or "class_path" not in part:
            continue
        signature = inspect.signature(configs.load_class(part["class_path"]).__init__)
        defaults = {
            name: parameter.default
            for name, parameter in signature.parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        part["init_args"] = {**defaults, **(part.get("init_args") or {})}
    return resolved


def fingerprint(experiment: str, stage: str, demo: bool, smoke: bool) -> str:
    resolved = completed(configs.resolved_config(configs.stage_configs(experiment, demo, smoke, stage)))
    text = json.dumps(resolved, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current() -> dict[str, list[dict[str, str]]]:
    """experiment → its chain, each stage's name and fingerprint per setting."""
    return {
        experiment: [
            {"stage": stage}
            | {name: fingerprint(experiment, stage, *flags) for name, flags in SETTINGS.items()}
            for stage in configs.stage_chain(experiment)
        ]
        for experiment in configs.experiment_names()
    }


def test_every_stage_trains_the_recorded_config():
    recorded, now = json.loads(RECORD.read_text()), current()
    assert sorted(now) == sorted(recorded), "experiments added or removed: record them (see the module doc)"
    changed = [
        f"{experiment} stage {position + 1} ({stage['stage']}): {name}"
        for experiment, chain in now.items()
        for position, stage in enumerate(chain)
        for name in ("stage", *SETTINGS)
        if position >= len(recorded[experiment]) or recorded[experiment][position][name] != stage[name]
    ]
    assert len(now) == len(recorded) and not changed, "changed (see the module doc): " + "; ".join(changed)


@pytest.mark.parametrize("experiment", configs.experiment_names())
def test_a_variants_changes_reach_every_stage_of_its_chain(experiment):
    for name in configs.variant_configs(experiment):
        change = configs.settings(configs.read_config(name))
        for stage in configs.continued_stages(experiment):
            files = configs.stage_configs(experiment, False, False, stage)
            resolved = configs.settings(configs.resolved_config(files))
            assert {key: resolved.get(key) for key in change} == change, (experiment, stage)


@pytest.mark.parametrize("experiment", configs.experiment_names())
def test_no_value_is_repeated_between_the_stages_of_a_chain(experiment):
    """The stages one model trains in turn state each value once: a later stage extends the earlier one,
    and a variant's change applies to both, so a file stacked on only one of them never repeats a setting
    of a file stacked on only the other."""
    stacks = [
        set(configs.stage_configs(experiment, False, False, s)) for s in configs.continued_stages(experiment)
    ]
    for position, first in enumerate(stacks):
        for second in stacks[position + 1 :]:
            repeated = _settings(first - second) & _settings(second - first)
            assert not repeated, (experiment, sorted(repeated))


def _settings(files: set[str]) -> set[tuple[str, str]]:
    """(dotted key, value as JSON) of every setting in `files`."""
    return {
        (key, json.dumps(value))
        for path in files
        for key, value in configs.settings(yaml.safe_load(Path(path).read_text()) or {}).items()
    }


def test_no_two_experiments_share_a_name(tmp_path, monkeypatch):
    assert configs.shared_names() == {}
    for kind in ("entry", "stage"):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "twice.yaml").write_text("job: prepare\n")
    monkeypatch.setattr(configs, "KINDS", {kind: tmp_path / kind for kind in ("entry", "stage")})
    assert list(configs.shared_names()) == ["twice"]
    with pytest.raises(configs.ExperimentError, match="'twice' is defined twice"):
        configs.config_file("twice")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    RECORD.write_text(json.dumps(current(), indent=1) + "\n")
    print(f"recorded {RECORD}")
