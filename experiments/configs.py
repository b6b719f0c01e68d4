"""The experiment plan: what an experiment name means, read the same way by every command.

An experiment name stands for a YAML file in `experiments/` (entry experiments), `ablations/` or `stages/`
(names are unique across the three, so none needs its folder); `datasets/<name>` files hold data sections
shared by several experiments. Besides LightningCLI's sections a config may set the meta-keys of
`META_KEYS`. From them this module derives a name's chain of stages and the config files stacked for each
stage: its `extends` lineage, a variant's changes on every stage of the chain it continues, the demo and
smoke overlays. docs/configs.md explains the keys and the stacking; `make plan EXP=…` prints the result.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from datamodules.errors import ProjectError

EXPERIMENTS = Path(__file__).resolve().parent
KINDS = {"entry": EXPERIMENTS, "ablation": EXPERIMENTS / "ablations", "stage": EXPERIMENTS / "stages"}


@dataclass(frozen=True)
class MetaKey:
    """A config key that `experiments.train` reads to plan a chain (LightningCLI accepts and ignores it)."""

    type: Any
    help: str


META_KEYS = {
    "extends": MetaKey(str | None, "the experiment (or datasets/<name>) whose config this one is stacked on"),
    "next_stage": MetaKey(
        str | None, "the stage run after this one, initialised from this stage's checkpoint (init_from)"
    ),
    "pretrained": MetaKey(
        dict[str, str] | None, "model argument → experiment run first, whose checkpoint fills the argument"
    ),
    "requires": MetaKey(list[str] | None, "experiments run first without taking a checkpoint from them"),
    "job": MetaKey(str | None, "train (default) or prepare (build the data caches only)"),
}
SMOKE_OVERLAY = "smoke/every_stage"

# Values stated once, in `data`, and copied into `model` by LightningCLI (where the model takes them): the
# model then knows how its speech and faces were prepared, which inference asks it for.
LINKED_VALUES = (
    "image_size",
    "sample_rate",
    "n_mels",
    "audio_samples",
    "vad",
    "pre_emphasis",
    "emphasis_first",
    "generator",
    "speech_encoder",
    "inversion",
    "rows",
)


class ExperimentError(ProjectError):
    """The experiment name, run folder or checkpoint asked for does not exist."""


def runs_root() -> Path:
    """Where runs go: `$TF_RUNS_DIR`, else `runs/` in the repository."""
    return Path(os.environ.get("TF_RUNS_DIR", EXPERIMENTS.parent / "runs"))


# --- names and files -------------------------------------------------------------------------------------


def experiment_names(kind: str | None = None) -> list[str]:
    """The experiments of one kind ("entry", "ablation", "stage"), or of all kinds."""
    folders = [KINDS[kind]] if kind else list(KINDS.values())
    return sorted(p.stem for folder in folders for p in folder.glob("*.yaml"))


def shared_names() -> dict[str, list[Path]]:
    """Experiment names that more than one folder holds, with their files (there must be none: a name
    would stand for whichever folder is searched first)."""
    files: dict[str, list[Path]] = {}
    for folder in KINDS.values():
        for path in folder.glob("*.yaml"):
            files.setdefault(path.stem, []).append(path)
    return {name: paths for name, paths in files.items() if len(paths) > 1}


def config_file(name: str) -> Path:
    """The config of experiment `name` (or of a shared data section, `datasets/<name>`); an unknown name is
    an `ExperimentError` listing the entry experiments (the same answer from every command)."""
    if "/" in name:
        candidates = [EXPERIMENTS / f"{name}.yaml"]
    else:
        candidates = [folder / f"{name}.yaml" for folder in KINDS.values()]
    found = [path for path in candidates if path.is_file()]
    if len(found) > 1:
        raise ExperimentError(
            f"experiment {name!r} is defined twice ({', '.join(map(str, found))}); rename one of them"
        )
    if found:
        return found[0]
    raise ExperimentError(
        f"unknown experiment {name!r}. Known: {', '.join(experiment_names('entry'))} (the entry "
        "experiments; make help lists the ablations and internal stages too)"
    )


def require_experiment(experiment: str) -> Path:
    """`config_file` for a name a user typed: shared data sections are not experiments."""
    if "/" in experiment:
        raise ExperimentError(
            f"{experiment!r} is a shared config section, not an experiment. "
            f"Known: {', '.join(experiment_names('entry'))} (the entry experiments)"
        )
    return config_file(experiment)


def read_config(name: str) -> dict[str, Any]:
    return yaml.safe_load(config_file(name).read_text()) or {}


def lineage(experiment: str) -> list[str]:
    """The experiments whose configs `experiment` is stacked on (its `extends` chain), base first, then
    itself."""
    chain = [experiment]
    while True:
        base = read_config(chain[-1]).get("extends")
        if not base:
            return chain[::-1]
        if base in chain:
            raise ExperimentError(f"{config_file(chain[-1])}: extends {base!r} makes a cycle: {chain}")
        chain.append(base)


def config_value(experiment: str, key: str):
    """Meta-key `key` of `experiment` by the one rule: the nearest config of its lineage that sets it."""
    if key not in META_KEYS or key == "extends":
        inherited = [name for name in META_KEYS if name != "extends"]
        raise ValueError(f"{key!r} is not an inherited meta-key ({', '.join(inherited)})")
    for name in reversed(lineage(experiment)):
        config = read_config(name)
        if key in config:
            return config[key]
    return None


# --- the stage chain -------------------------------------------------------------------------------------


def pretrained_inputs(stage: str) -> dict[str, str]:
    """The stage's `pretrained` mapping: model argument → experiment whose best checkpoint fills it."""
    return dict(config_value(stage, "pretrained") or {})


def stage_dependencies(stage: str) -> list[str]:
    """Experiments that must complete before `stage`: those of its `pretrained` mapping, then those it
    `requires` without taking a checkpoint from (A2V's VAE needs the inverted data of `a2v_invert`)."""
    return [*pretrained_inputs(stage).values(), *(config_value(stage, "requires") or [])]


def continued_stages(experiment: str) -> list[str]:
    """`experiment`, then its `next_stage`, and so on, refusing cycles."""
    chain = [experiment]
    while following := config_value(chain[-1], "next_stage"):
        if following in chain:
            raise ExperimentError(
                f"{config_file(chain[-1])}: next_stage {following!r} makes a cycle: {chain}"
            )
        require_experiment(following)
        chain.append(following)
    return chain


def variant_configs(experiment: str) -> list[str]:
    """The configs of `experiment`'s lineage after the one that names its chain's `next_stage`: a
    variant's changes (`sf2f_multires` on `sf2f`), which `stage_config_files` stacks on every later stage
    of the chain as well. Empty for the experiment that names the chain itself."""
    names = lineage(experiment)
    for position in range(len(names) - 1, -1, -1):
        if "next_stage" in read_config(names[position]):
            return names[position + 1 :]
    return []


def stage_chain(experiment: str, _visiting: tuple[str, ...] = ()) -> list[str]:
    """The stages `make train EXP=experiment` runs, in order: `experiment` and the stages its configs name
    in `next_stage`, each preceded by the stages it depends on (`stage_dependencies`; TCSAN's AU
    classifier and Audio2AU, A2V's inversion and VAE)."""
    require_experiment(experiment)
    plan: list[str] = []
    for stage in continued_stages(experiment):
        for dependency in stage_dependencies(stage):
            if dependency in _visiting + (stage,):
                raise ExperimentError(f"{stage}: pretrained {dependency!r} makes a cycle")
            plan += [s for s in stage_chain(dependency, _visiting + (stage,)) if s not in plan]
        plan.append(stage)
    return plan


def stage_inputs(chain: list[str]) -> dict[str, dict[str, str]]:
    """Per stage, the model arguments filled with earlier stages' best checkpoints: its `pretrained`
    mapping, and `init_from` = the stage whose `next_stage` it is."""
    inputs = {stage: pretrained_inputs(stage) for stage in chain}
    for stage in chain:
        following = config_value(stage, "next_stage")
        if following in inputs:
            inputs[following]["init_from"] = stage
    return inputs


# --- stacked config files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackedFile:
    """One config file of a stage, and why it is in the stack."""

    path: Path
    reason: str


def stage_config_files(
    experiment: str, demo: bool, smoke: bool, stage: str | None = None
) -> list[StackedFile]:
    """The config files of one stage of `experiment`'s chain (the experiment itself by default), later ones
    overriding earlier ones: each config of the stage's lineage, then, on the stages after the first of a
    variant's chain, the variant's configs (`variant_configs`); each followed by its demo overlay, then the
    smoke overlays."""
    stage = stage or experiment
    continued = stage in continued_stages(experiment)[1:]
    variant = variant_configs(experiment) if continued else []
    names, stacked = [*lineage(stage), *variant], []
    for name in names:
        if name in variant:
            reason = f"a change of the variant {experiment} ({', '.join(settings(read_config(name)))})"
        else:
            reason = "the stage's own config" if name == stage else f"extended by {stage}"
        stacked.append(StackedFile(config_file(name), reason))
        if demo:
            stacked.append(
                StackedFile(
                    EXPERIMENTS / "demo" / f"{name}.yaml",
                    f"demo overlay of {name}: no DATA given, so the embedded demo dataset at CPU size",
                )
            )
    if smoke:
        reason = "smoke overlay (--smoke): a few CPU steps on the tiny fixture"
        stacked.append(StackedFile(EXPERIMENTS / f"{SMOKE_OVERLAY}.yaml", reason))
        stacked += [StackedFile(EXPERIMENTS / "smoke" / f"{name}.yaml", reason) for name in names]
    return [entry for entry in stacked if entry.path.is_file()]


def stage_configs(experiment: str, demo: bool, smoke: bool, stage: str | None = None) -> list[str]:
    """The paths of `stage_config_files`, as LightningCLI's `--config` arguments take them."""
    return [str(entry.path) for entry in stage_config_files(experiment, demo, smoke, stage)]


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """A config's settings besides the meta-keys, by dotted key (`{"model.init_args.multires": True}`)."""

    def leaves(mapping: dict[str, Any], prefix: str) -> dict[str, Any]:
        found = {}
        for key, value in mapping.items():
            nested = isinstance(value, dict) and value
            found |= leaves(value, f"{prefix}{key}.") if nested else {f"{prefix}{key}": value}
        return found

    return leaves({key: value for key, value in config.items() if key not in META_KEYS}, "")


def resolved_config(config_files: list[str | Path]) -> dict[str, Any]:
    """Stacked config files merged into one mapping, later files overriding earlier ones key by key (nested
    mappings merged, lists replaced) as LightningCLI stacks them; meta-keys left out."""
    resolved: dict[str, Any] = {}
    for path in config_files:
        part = yaml.safe_load(Path(path).read_text()) or {}
        _merge(resolved, {key: value for key, value in part.items() if key not in META_KEYS})
    return resolved


def stacked_section(config_files: list[str | Path], section: str) -> tuple[str | None, dict[str, Any]]:
    """(class_path, init_args) of one section (`model`, `data`) of stacked config files."""
    part = resolved_config(config_files).get(section) or {}
    return part.get("class_path"), part.get("init_args") or {}


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def stage_model_class(experiment: str, stage: str) -> str | None:
    """The `model.class_path` a stage of `experiment`'s chain trains (None for a data-preparation stage)."""
    return stacked_section(stage_configs(experiment, demo=False, smoke=False, stage=stage), "model")[0]


# --- building what a config names -----------------------------------------------------------------------


def load_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def apply_setting(kwargs: dict[str, Any], setting: str, flag: str = "--set") -> None:
    """`a.b=value` (value parsed as YAML) into the nested dict `kwargs`; `flag` names the command-line
    option it came from, for the error."""
    key, sep, value = setting.partition("=")
    if not sep:
        raise ProjectError(f"{flag} expects KEY=VALUE, got {setting!r}")
    *parents, leaf = key.split(".")
    target = kwargs
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = yaml.safe_load(value)


def make_datamodule(class_path: str, kwargs: dict[str, Any]):
    """Instantiate a datamodule from a config's `class_path` and `init_args` (nested dicts allowed)."""
    return load_class(class_path)(**kwargs)
