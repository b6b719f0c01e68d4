"""Evaluate checkpoints with their paper's protocol: `python -m experiments.evaluate EXP --ckpt CKPT [...]`.

What `make eval EXP=… CKPT=…` runs. CKPT is a `.ckpt` file, a stage folder (its best checkpoint), or `last`
(the newest run of EXP that holds a checkpoint). The model comes from the checkpoint; the data from the
stage's saved `config.yaml` (`--data DIR` reads another root of the same layout). Several checkpoints give one
table (e.g. Wav2Pix's speech-length sweep: one checkpoint per length; E2E-NR's Proposed vs Proposed-NR).
Writes `metrics.json` and `results.md`, our numbers beside the paper's, plus `sweep.png` for swept protocols
(E2E-NR's metric-vs-SNR curves), to `--out` (default `<stage folder>/eval/`), and logs them to a W&B
run there (`make wandb-sync` uploads it when it was logged offline).

System-specific options go through `--option KEY=VALUE` (YAML values), e.g. for E2E-NR
`--option snrs_db=[-10,0,10,20,30] --option max_clips=100 --option landmarks=false`.

After the paper's protocol, the shared metrics (`lightning_modules/common/metrics/metric_suite.py`) score the
same test split for every system under the same names: PSNR, SSIM, L1, LPIPS, FID/KID, landmark
distance, face detection rate, identity cosine and Recall@K, CPBD, AU F1, LSE-C/LSE-D, FVD and CSIM. Metrics
whose weights are not given are listed as "not computed: <why>". Weights come from `--weights KEY=PATH`
(lpips_backbone, fid_inception_weights, inception_weights, syncnet_weights, facenet_weights, i3d_weights,
arcface_weights) or from a folder
holding them under their released names (`--weights-dir`, default `$TF_WEIGHTS_DIR`). `--noise-sweep` adds the
shared video metrics against SNR with E2E-NR's held-out noises, for every system that makes video
(`noise_sweep.png`). The first test clips (`--report-clips N`, default 4) are always written with their speech
under `<out>/clips/` for `make compare`'s report.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datamodules.errors import command_errors
from datamodules.pipeline.noise_mixing import EVAL_SNRS_DB
from experiments.checkpoints import load_for_evaluation, resolve_checkpoint
from experiments.configs import (
    ExperimentError,
    apply_setting,
)
from experiments.path_lists import read_path_list
from experiments.run_folders import stage_of
from lightning_modules.common.contracts import PaperEvaluated, SharedEvaluated
from lightning_modules.common.metrics.metric_suite import STANDARD_FILES, WEIGHTS_DIR_VARIABLE, MetricSettings
from lightning_modules.common.metrics.report_clips import REPORT_CLIPS, ReportClips
from lightning_modules.common.metrics.shared_evaluation import (
    SHARED_SETTING,
    shared_noise_sweep,
    shared_report,
)


@dataclass(frozen=True)
class SharedOptions:
    """What `make eval` adds to a system's own protocol (see the module docstring)."""

    enabled: bool = True
    settings: MetricSettings = field(default_factory=MetricSettings)
    max_items: int | None = None
    noise_sweep: bool = False
    snrs_db: tuple[float, ...] = EVAL_SNRS_DB
    noise_types: list[str] | None = None
    dump: bool = False  # write the test outputs under <eval folder>/dump for outside scorers
    report_clips: int = (
        REPORT_CLIPS  # the first test clips written under <eval folder>/clips for make compare
    )


def evaluate(
    experiment: str,
    checkpoints: list[str],
    data: str | None,
    out: str | None,
    options: dict,
    use_wandb: bool = True,
    shared: SharedOptions = SharedOptions(),
):
    report = None
    resolved = [resolve_checkpoint(experiment, value) for value in checkpoints]
    folder = Path(out) if out else stage_of(resolved[0]) / "eval"
    for checkpoint in resolved:
        model, datamodule = load_for_evaluation(experiment, checkpoint, data)
        has_protocol = isinstance(model, PaperEvaluated)
        if has_protocol:
            check_options(model.paper_evaluation, options)
        elif options:
            raise ExperimentError(
                f"{type(model).__name__} has no paper protocol to take --option {sorted(options)}."
            )
        if not has_protocol and not shared.enabled:
            raise ExperimentError(
                f"{type(model).__name__} has no paper protocol; drop --no-shared to get the shared metrics."
            )
        datamodule.prepare_data()
        datamodule.setup("test")
        print(f"[eval] {checkpoint}", file=sys.stderr)
        part = None
        if has_protocol:
            extra = (
                {"out_dir": str(folder)}
                if "out_dir" in inspect.signature(model.paper_evaluation).parameters
                else {}
            )
            part = model.paper_evaluation(datamodule, **{**extra, **options})
        stage_dir = stage_of(checkpoint)
        label = f"{stage_dir.parent.name}/{stage_dir.name}"  # <run>/<stage>
        file_label = label.replace("/", "_")  # the run's outputs in the eval folder, one name per run
        part = add_shared_metrics(
            part,
            model,
            datamodule,
            shared,
            label,
            folder / "dump" / file_label if shared.dump else None,
            folder / f"speech_dependence_{file_label}.png",
            folder / "clips" / file_label,
        )
        part.details = {str(checkpoint): part.details}
        if report is None:
            report = part
        else:
            report.extend(part)
    written = report.write(folder)
    if use_wandb:
        log_to_wandb(report, written, folder, experiment)
    print(report.markdown())
    print(f"[eval] wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return report


def add_shared_metrics(
    report,
    model,
    datamodule,
    shared: SharedOptions,
    label: str,
    dump: Path | None = None,
    picture: Path | None = None,
    clips: Path | None = None,
):
    """The system's report (or a new one) with the shared metrics' rows and, when asked, the noise sweep;
    `picture`: where to draw the speech-dependence picture (`metrics/speech_picture.py`); `clips`: where to
    write the first `shared.report_clips` test clips for `make compare` (`metrics/report_clips.py`)."""
    if not shared.enabled:
        return report
    if not isinstance(model, SharedEvaluated):
        raise ExperimentError(
            f"{type(model).__name__} gives no evaluation samples, so the shared metrics cannot score it; "
            "pass --no-shared."
        )
    system = report.system if report is not None else type(model).__name__.removesuffix("Module")
    writer = ReportClips(clips, label, shared.report_clips) if clips and shared.report_clips > 0 else None
    common = shared_report(
        model,
        datamodule,
        shared.settings,
        system,
        max_items=shared.max_items,
        dump=dump,
        picture=picture,
        clips=writer,
    )
    for row in common.rows:
        row.setting = f"{row.setting}, {label}"
    if shared.noise_sweep:
        common.noise_sweep = shared_noise_sweep(
            model,
            datamodule,
            shared.settings,
            f"{system} ({label})",
            list(shared.snrs_db),
            shared.noise_types,
            shared.max_items,
        )
    if report is None:
        return common
    report.rows += common.rows
    report.details["shared"] = common.details
    report.noise_sweep = common.noise_sweep
    return report


def check_options(method, options: dict) -> None:
    accepted = [
        name for name in inspect.signature(method).parameters if name not in ("datamodule", "out_dir")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ExperimentError(f"unknown evaluation option(s) {unknown}; this system accepts {accepted}")


def log_to_wandb(report, written: list[Path], folder: Path, experiment: str) -> None:
    """The table and plots as a W&B run grouped with the experiment's training runs (offline unless W&B's
    switches say live, `experiments.wandb_mode`)."""
    import wandb

    from experiments.cli import WANDB_PROJECT
    from experiments.wandb_mode import logs_offline

    run = wandb.init(
        project=WANDB_PROJECT,
        dir=str(folder),
        mode="offline" if logs_offline() else None,
        group=experiment,
        job_type="eval",
        name=f"{experiment}/eval",
        config={"dataset": report.dataset},
    )
    columns = ["metric", "setting", "paper", "ours", "note"]
    rows = [[r.metric, r.setting, r.paper, r.ours, r.note] for r in report.rows]
    run.log({"eval/results": wandb.Table(columns=columns, data=rows)})
    # Scalars under one name per metric for every system, so a dashboard can chart runs side by side.
    for row in report.rows:
        if row.ours == row.ours and row.setting.startswith(SHARED_SETTING):
            run.summary[f"eval/{row.metric}"] = row.ours
    for path in written:
        if path.suffix == ".png":
            run.log({f"eval/{path.stem}": wandb.Image(str(path))})
    run.finish()


def parse_options(settings: list[str], flag: str) -> dict:
    """`KEY=VALUE` arguments of `flag` (values parsed as YAML) → `{key: value}`."""
    options = {}
    for setting in settings:
        apply_setting(options, setting, flag)
    return options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="experiment name (experiments/<name>.yaml)")
    parser.add_argument(
        "--ckpt", action="append", default=[], help="checkpoint, stage/run folder or 'last'; repeatable"
    )
    parser.add_argument(
        "--ckpt-list", help="a text file listing checkpoints (or stage/run folders), one per line"
    )
    parser.add_argument("--data", help="dataset root of the same layout (default: the data the run used)")
    parser.add_argument("--out", help="output folder (default: <stage folder>/eval)")
    parser.add_argument(
        "--probe",
        choices=["cnn", "dlib"],
        help="Wav2Pix: identity classifier fitted on real faces (VGG-Face substitute); default cnn",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword of the system's evaluation (YAML value); repeatable",
    )
    parser.add_argument(
        "--no-wandb", action="store_true", help="do not log the results to an offline W&B run"
    )
    parser.add_argument(
        "--no-shared", action="store_true", help="only the paper's protocol, not the shared metrics"
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="weights for a shared metric: lpips_backbone, fid_inception_weights, inception_weights, "
        "syncnet_weights, facenet_weights, i3d_weights (FVD), arcface_weights (CSIM); repeatable",
    )
    parser.add_argument(
        "--weights-dir",
        help="folder holding those files under their released names "
        f"({', '.join(STANDARD_FILES.values())}); default ${WEIGHTS_DIR_VARIABLE}",
    )
    parser.add_argument(
        "--max-items", type=int, help="score at most this many test clips/utterances with the shared metrics"
    )
    parser.add_argument(
        "--dump",
        action="store_true",
        help="write every test output (videos with audio, frames, "
        "index.csv) under <out>/dump for syncnet_python, pytorch-fid, clean-fid",
    )
    parser.add_argument(
        "--report-clips",
        type=int,
        default=REPORT_CLIPS,
        metavar="N",
        help=f"write the first N test clips (default {REPORT_CLIPS}; 0: none) with their speech under "
        "<out>/clips for make compare's report",
    )
    parser.add_argument(
        "--noise-sweep",
        action="store_true",
        help="video systems: shared metrics with the speech mixed with held-out noises at each SNR",
    )
    parser.add_argument(
        "--snrs",
        type=float,
        nargs="+",
        default=list(EVAL_SNRS_DB),
        help="SNRs (dB) of the noise sweep (default: E2E-NR's −10…30 in 1-dB steps)",
    )
    args = parser.parse_args(argv)
    with command_errors():
        checkpoints = args.ckpt + (read_path_list(args.ckpt_list) if args.ckpt_list else [])
        if not checkpoints:
            parser.error("give --ckpt (repeatable) or --ckpt-list")
        options = parse_options(args.option, "--option")
        if args.probe:
            options["probe"] = args.probe
        weights = {key: str(path) for key, path in parse_options(args.weights, "--weights").items()}
        settings = MetricSettings.from_folder(args.weights_dir, **weights)
        shared = SharedOptions(
            not args.no_shared,
            settings,
            args.max_items,
            args.noise_sweep,
            tuple(args.snrs),
            dump=args.dump,
            report_clips=args.report_clips,
        )
        evaluate(
            args.experiment,
            checkpoints,
            args.data,
            args.out,
            options,
            use_wandb=not args.no_wandb,
            shared=shared,
        )


if __name__ == "__main__":
    main()
