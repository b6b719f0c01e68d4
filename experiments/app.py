"""Try checkpoints in a browser: `python -m experiments.app --ckpt CKPT [--experiment EXP] [--port 7860]`.

What `make app CKPT=… [EXP=…]` runs (several checkpoints side by side: `CKPT_LIST=file`, one per line). It
serves a local page (http://127.0.0.1:PORT; nothing is sent anywhere: no analytics, no share link, no web
fonts) where you give speech, by upload or from the microphone, and a photo of a face. Each checkpoint
then shows, side by side on the same input:

- a video system's talking-face video with your speech as its sound, or a face system's face;
- the speech-dependence picture of that output: video systems, the mouth over time against your speech's
  energy, beside the same face driven by your speech reversed in time (a mouth that follows the sound
  follows the energy; the reversed control does not); face systems, the face from your speech beside faces
  from the speech reversed (the same voice) and from noise at its loudness (no voice).

Inputs go through `make infer`'s preprocessing (any audio format and rate, the face detected and aligned as
in training), and a bad input shows the same one-line error on the page that `make infer` prints. A long
input shows a progress bar; requests are queued so that the page stays responsive while one is generating.
EXP names the system when CKPT does not tell it (`last`, a folder outside `runs/<EXP>/`); a checkpoint
file carries its experiment.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.errors import ProjectError, command_errors, error_line
from experiments.checkpoints import checkpoint_experiment, resolve_checkpoint
from experiments.configs import ExperimentError, experiment_names
from experiments.infer import MUX_SAMPLE_RATE, align_face, load_generator, read_face_image, read_speech
from experiments.path_lists import read_path_list
from lightning_modules.common.contracts import FaceSystem

# Gradio reads this when it is imported: no usage reports and no version check leave the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
HOST = "127.0.0.1"  # the page is served to this machine only
NOISE_SEED = 0
OUTPUT_HEIGHT = 256  # px on the page: the demo models' 64-128 px outputs, enlarged
MOUTH_TITLE = "The mouth against your speech's energy, and driven by the same speech reversed (the control)"
FACE_TITLE = "Faces from your speech, from the same voice reversed, and from noise as loud (no voice)"


@dataclass
class LoadedModel:
    """One checkpoint, loaded once when the app starts."""

    label: str
    model: object
    data_args: dict

    @property
    def makes_video(self) -> bool:
        return not isinstance(self.model, FaceSystem)


@dataclass
class Output:
    """What one checkpoint made of one input: its video or face, its speech-dependence picture, and a line
    saying what was made (or the error)."""

    media: str | None
    picture: str | None
    message: str


def experiment_of(value: str, experiment: str | None) -> str:
    """The experiment of checkpoint `value`: `experiment` when given, else the one a checkpoint file carries
    or the `runs/<EXP>/…` folder it lies in."""
    if experiment:
        return experiment
    path = Path(value)
    if path.is_file() and (carried := checkpoint_experiment(path)):
        return carried
    known = set(experiment_names())
    for folder in (path.resolve(), *path.resolve().parents):
        if folder.name in known:
            return folder.name
    raise ExperimentError(f"{value}: cannot tell which system this checkpoint is. Pass EXP=<experiment>.")


def load_models(checkpoints: list[str], experiment: str | None) -> list[LoadedModel]:
    loaded = []
    for value in checkpoints:
        name = experiment_of(value, experiment)
        checkpoint = resolve_checkpoint(name, value)
        model, data_args = load_generator(name, str(checkpoint))
        loaded.append(LoadedModel(f"{name} · {checkpoint}", model, data_args))
    return loaded


def generate(loaded: LoadedModel, audio: str | None, image: str | None, folder: Path) -> Output:
    """`loaded`'s output for the speech file `audio` (and the photo `image`) written into `folder`; a bad
    input gives its one-line error instead."""
    try:
        if not audio:
            raise ExperimentError("no speech given. Upload a speech file or record one with the microphone.")
        speech = read_speech(audio, loaded.model.speech_rate)
        if loaded.makes_video:
            return talking_video(loaded, speech, audio, image, folder)
        return speaking_face(loaded, speech, folder)
    except (ProjectError, OSError) as error:
        line = error_line(error)
        if line is None:
            raise
        return Output(None, None, line)


def talking_video(
    loaded: LoadedModel, speech: np.ndarray, audio: str, image: str | None, folder: Path
) -> Output:
    """The video of the face in `image` saying `speech`, and the same face driven by the speech reversed."""
    from datamodules.pipeline.audio import read_audio
    from datamodules.pipeline.video_writer import write_mp4
    from lightning_modules.common.contracts import whole_video
    from lightning_modules.common.metrics.plots import save_figure
    from lightning_modules.common.metrics.speech_picture import mouth_figure
    from lightning_modules.common.metrics.video_metrics import FrameLandmarks

    if not image:
        raise ExperimentError(f"{loaded.label} animates a face: upload a photo of a face.")
    face = align_face(read_face_image(Path(image)), loaded.data_args, Path(image))
    frames = whole_video(loaded.model.synthesise_chunks(speech, face, progress=True))
    reversed_frames = whole_video(loaded.model.synthesise_chunks(speech[::-1].copy(), face, progress=True))
    video = folder / "generated.mp4"
    write_mp4(video, frames, fps=25, audio=read_audio(audio, MUX_SAMPLE_RATE), sample_rate=MUX_SAMPLE_RATE)
    rows = {"your speech": frames, "reversed speech": reversed_frames}
    picture = save_figure(
        mouth_figure(rows, "your speech", speech, loaded.model.speech_rate, FrameLandmarks(), MOUTH_TITLE),
        folder / "speech_dependence.png",
    )
    seconds = len(speech) / loaded.model.speech_rate
    return Output(str(video), str(picture), f"{len(frames)} frames at 25 fps, {seconds:.2f} s of speech")


def speaking_face(loaded: LoadedModel, speech: np.ndarray, folder: Path) -> Output:
    """The face of the voice in `speech`, beside the faces of the speech reversed and of noise as loud."""
    from PIL import Image

    from lightning_modules.common.metrics.plots import save_figure
    from lightning_modules.common.metrics.speech_picture import face_figure

    noise = np.random.default_rng(NOISE_SEED).standard_normal(len(speech)).astype(np.float32)
    noise *= float(np.sqrt(np.mean(speech**2)) / max(np.sqrt(np.mean(noise**2)), 1e-12))
    drivings = {"your speech": speech, "reversed speech": speech[::-1].copy(), "noise, as loud": noise}
    faces = {name: loaded.model.face_from_speech(driving) for name, driving in drivings.items()}
    face = folder / "face.png"
    Image.fromarray(faces["your speech"]).save(face)
    seconds = len(speech) / loaded.model.speech_rate
    picture = save_figure(
        face_figure({name: (image,) for name, image in faces.items()}, ("generated",), FACE_TITLE),
        folder / "speech_dependence.png",
    )
    return Output(
        str(face),
        str(picture),
        f"a {len(faces['your speech'])}-px face from {seconds:.2f} s of speech",
    )


def respond(models: list[LoadedModel], audio: str | None, image: str | None) -> list:
    """The page's outputs for one input: (media, picture, message) per model, in order."""
    values = []
    for loaded in models:
        folder = Path(tempfile.mkdtemp(prefix="talking-faces-app-"))
        try:
            output = generate(loaded, audio, image, folder)
        except Exception as error:  # noqa: BLE001 - the page shows it; the console keeps the traceback
            traceback.print_exc()
            output = Output(None, None, f"error: {type(error).__name__}: {error} (a bug: please report it)")
        values += [output.media, output.picture, output.message]
    return values


def build_app(models: list[LoadedModel]):
    """The page (a `gradio.Blocks`): inputs on top, one column per model below."""
    import gradio as gr

    with gr.Blocks(title="Talking faces", analytics_enabled=False) as app:
        gr.Markdown(
            "## Speech-driven faces\nGive speech (upload or microphone) and, for video systems, a photo "
            "of a face; each checkpoint below generates from the same input."
        )
        with gr.Row():
            speech = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="speech"
            )
            photo = gr.Image(sources=["upload"], type="filepath", label="Photo of a face", elem_id="photo")
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        outputs = []
        with gr.Row():
            for index, loaded in enumerate(models):
                with gr.Column():
                    gr.Markdown(f"**{loaded.label}**")
                    kind = gr.Video if loaded.makes_video else gr.Image
                    outputs.append(
                        kind(
                            label="output", elem_id=f"output-{index}", interactive=False, height=OUTPUT_HEIGHT
                        )
                    )
                    outputs.append(gr.Image(show_label=False, elem_id=f"picture-{index}", interactive=False))
                    outputs.append(gr.Markdown(elem_id=f"message-{index}"))

        def run(audio, image, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - gradio's own idiom
            return respond(models, audio, image)

        button.click(run, [speech, photo], outputs, concurrency_limit=1)
    return app.queue(default_concurrency_limit=1)


def serve(models: list[LoadedModel], port: int, block: bool = True):
    """Serve the page on `HOST`:`port`; `block=False` returns once it is up (tests). → (app, local URL)."""
    import gradio as gr

    app = build_app(models)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])  # no web fonts
    _, url, _ = app.launch(
        server_name=HOST,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=not block,
        footer_links=[],
        theme=theme,
    )
    return app, url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.app",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--experiment", help="the system (default: what each checkpoint tells)")
    parser.add_argument(
        "--ckpt", default="last", help="checkpoint file, run/stage folder or 'last' (needs EXP)"
    )
    parser.add_argument(
        "--ckpt-list", help="a text file listing checkpoints, one per line, shown side by side"
    )
    parser.add_argument("--port", type=int, default=7860, help="local port (default 7860)")
    args = parser.parse_args(argv)
    with command_errors():
        checkpoints = read_path_list(args.ckpt_list) if args.ckpt_list else [args.ckpt]
        if checkpoints == ["last"] and not args.experiment:
            raise ExperimentError("CKPT=last needs the system: pass EXP=<experiment>, or CKPT=<checkpoint>.")
        models = load_models(checkpoints, args.experiment)
        print(f"[app] {len(models)} model(s) on http://{HOST}:{args.port} (Ctrl-C stops)", file=sys.stderr)
        serve(models, args.port)


if __name__ == "__main__":
    main()
