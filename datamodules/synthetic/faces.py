"""Faces rendered from one real photograph (`skimage.data.astronaut()`), changed per speaker.

Real face detectors (dlib HOG, MTCNN) must find these faces, so rather than drawing cartoons every face is
the astronaut's, recoloured (hue, saturation, brightness: one 3×3 colour matrix per speaker), mirrored,
rotated and rescaled. The mouth is opened (and, for the `lips` articulation, widened or rounded) on the
source image before the geometric warp, so it moves with the face. Per image, a small random pose and
lighting jitter makes images of one speaker differ.

Source-image facts below were measured with dlib on the 512×512 photo (pixel (x, y) coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from .speakers import SpeakerProfile

FACE_BOX = (175, 76, 265, 166)  # dlib's box: left, top, right, bottom
# 68-point landmarks 48–67: outer lip 48–59 (corners 48 and 54), inner lip 60–67
MOUTH_LANDMARKS = np.array(
    [
        [201, 139],
        [209, 139],
        [218, 139],
        [224, 141],
        [230, 140],
        [238, 140],
        [246, 141],
        [238, 151],
        [229, 155],
        [222, 156],
        [216, 155],
        [208, 150],
        [204, 141],
        [218, 143],
        [223, 144],
        [230, 143],
        [243, 142],
        [229, 150],
        [223, 151],
        [217, 150],
    ],
    dtype=np.float64,
)
FACE_CENTRE = ((FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2)
HEAD_ELLIPSE = (222.0, 118.0, 62.0, 80.0)  # centre x, y and semi-axes: face and hair, for masked crops
PAD = 160  # reflection padding, so rotated or shifted windows never leave the photo

CROP_WINDOW = 150.0  # source pixels spanned by an aligned crop at scale 1 (the face fills ~60 %)
FRAME_WINDOW = 210.0  # source pixels spanned by the shorter side of a full frame at scale 1

MOUTH_CORNERS_X = (MOUTH_LANDMARKS[0, 0], MOUTH_LANDMARKS[6, 0])
# The smiling mouth shows teeth: the jaw opens along the line between upper and lower inner lip, which
# sits higher at the corners than in the middle.
MOUTH_LINE_MIDDLE_Y = (MOUTH_LANDMARKS[14, 1] + MOUTH_LANDMARKS[18, 1]) / 2
MOUTH_LINE_CORNER_Y = (MOUTH_LANDMARKS[12, 1] + MOUTH_LANDMARKS[16, 1]) / 2
LOWER_LIP_BOTTOM_Y = MOUTH_LANDMARKS[9, 1] + 4.0
CHIN_Y = 195.0  # below it the neck does not move with the jaw
MAX_OPENING_PX = 14.0  # lower-lip drop in source pixels at opening 1
CAVITY_RGB = np.array([70.0, 25.0, 30.0])
MOUTH_PATCH = (185, 135, 262, 200)  # left, top, right, bottom of the region the jaw warp touches
MOUTH_CENTRE_X = (MOUTH_CORNERS_X[0] + MOUTH_CORNERS_X[1]) / 2
LIPS_TOP_Y = MOUTH_LANDMARKS[2, 1] - 4.0  # above the upper lip, where widening starts
LIPS_HALF_SPAN = (30.0, 38.0)  # widening is full within 30 px of the mouth's centre, none from 38 px


@dataclass(frozen=True)
class Pose:
    """Per-image jitter: shift in output pixels, extra rotation (degrees), zoom and light multipliers."""

    dx: float = 0.0
    dy: float = 0.0
    rotation_deg: float = 0.0
    zoom: float = 1.0
    light: tuple[float, float, float] = (1.0, 1.0, 1.0)


def sample_pose(rng: np.random.Generator, strength: float = 1.0) -> Pose:
    """Small head-pose and lighting changes; `strength` 0 gives the speaker's neutral pose."""
    light = 1.0 + strength * (rng.uniform(-0.06, 0.06) + rng.uniform(-0.03, 0.03, size=3))
    return Pose(
        dx=strength * float(rng.uniform(-2.0, 2.0)),
        dy=strength * float(rng.uniform(-2.0, 2.0)),
        rotation_deg=strength * float(rng.uniform(-3.0, 3.0)),
        zoom=1.0 + strength * float(rng.uniform(-0.03, 0.03)),
        light=tuple(float(v) for v in light),
    )


def color_matrix(hue_shift_deg: float, saturation: float, brightness: float) -> np.ndarray:
    """3×3 RGB matrix: hue rotation about the grey axis, saturation about luma, then brightness.

    Hue rotation and saturation are linear in RGB, so one matrix replaces a per-pixel HSV round trip.
    """
    angle = np.deg2rad(hue_shift_deg)
    grey = np.full((3, 3), 1.0 / 3.0)
    cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / np.sqrt(3.0)
    hue = grey + np.cos(angle) * (np.eye(3) - grey) + np.sin(angle) * cross
    luma = np.tile([0.299, 0.587, 0.114], (3, 1))
    return brightness * (luma + saturation * (np.eye(3) - luma)) @ hue


@lru_cache(maxsize=1)
def _padded_source() -> np.ndarray:
    from skimage.data import astronaut

    return np.pad(astronaut().astype(np.float32), ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")


def _across_mouth(x: np.ndarray) -> np.ndarray:
    """1 at the mouth's middle falling to 0 at its corners, rounded like lips, `(W,)`."""
    left, right = MOUTH_CORNERS_X
    return np.sin(np.pi * np.clip((x - left) / (right - left), 0.0, 1.0)) ** 0.6


def _mouth_line(x: np.ndarray) -> np.ndarray:
    """y where the jaw opens at columns x, `(W,)`."""
    return MOUTH_LINE_CORNER_Y + (MOUTH_LINE_MIDDLE_Y - MOUTH_LINE_CORNER_Y) * _across_mouth(x)


@lru_cache(maxsize=1)
def _jaw_weights() -> tuple[np.ndarray, np.ndarray]:
    """How far each mouth-patch pixel moves with the jaw, `(H, W)` in [0, 1], and the mouth line `(W,)`.

    The weight is 1 from the mouth line through the lower lip, fading to 0 at the chin (so skin stretches
    smoothly) and towards the mouth corners, which gives the opened mouth its lens shape.
    """
    left, top, right, bottom = MOUTH_PATCH
    x, y = np.arange(left, right, dtype=np.float64), np.arange(top, bottom, dtype=np.float64)[:, None]
    line = _mouth_line(x)
    towards_chin = np.clip((y - LOWER_LIP_BOTTOM_Y) / (CHIN_Y - LOWER_LIP_BOTTOM_Y), 0.0, 1.0)
    down = np.where(y < line, 0.0, np.cos(0.5 * np.pi * towards_chin))
    return down * _across_mouth(x), line


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@lru_cache(maxsize=32)
def speaker_source(profile: SpeakerProfile) -> Image.Image:
    """The padded photo recoloured for `profile`, as an RGB image (computed once per speaker)."""
    matrix = color_matrix(profile.hue_shift, profile.saturation, profile.brightness).astype(np.float32)
    return Image.fromarray(_to_uint8(_padded_source() @ matrix.T))


def _lip_weights(drop_px: float) -> np.ndarray:
    """How much each mouth-patch pixel follows the lips' width, `(H, W)` in [0, 1]: 1 over the lips (down to
    the lower lip, dropped by `drop_px`), fading to 0 above, below and towards the patch's sides."""
    left, top, right, bottom = MOUTH_PATCH
    x, y = np.arange(left, right, dtype=np.float64), np.arange(top, bottom, dtype=np.float64)[:, None]
    near, far = LIPS_HALF_SPAN
    across = np.clip((far - np.abs(x - MOUTH_CENTRE_X)) / (far - near), 0.0, 1.0)
    lower = LOWER_LIP_BOTTOM_Y + drop_px
    down = np.clip((y - LIPS_TOP_Y + 6.0) / 6.0, 0.0, 1.0) * np.clip((lower + 6.0 - y) / 6.0, 0.0, 1.0)
    return down * across


def _set_width(patch: np.ndarray, width: float, drop_px: float) -> np.ndarray:
    """`patch` `(H, W, 3)` with the lips stretched (`width` > 1, spread) or drawn in (< 1, rounded) about the
    mouth's centre, by resampling each row."""
    left = MOUTH_PATCH[0]
    x = np.arange(patch.shape[1], dtype=np.float64)[None, :] + left
    scale = 1.0 + (width - 1.0) * _lip_weights(drop_px)
    source_x = np.clip(MOUTH_CENTRE_X + (x - MOUTH_CENTRE_X) / scale - left, 0.0, patch.shape[1] - 1.001)
    column = np.floor(source_x).astype(np.int64)
    frac = (source_x - column)[..., None]
    rows = np.arange(patch.shape[0])[:, None]
    return patch[rows, column] * (1 - frac) + patch[rows, column + 1] * frac


def _open_mouth(
    source: Image.Image, profile: SpeakerProfile, opening: float, width: float = 1.0
) -> Image.Image:
    """The mouth patch of `source` with the jaw dropped, the mouth cavity drawn and, when `width` is not 1,
    the lips spread or rounded."""
    left, top, right, bottom = MOUTH_PATCH
    patch = np.asarray(source.crop((left + PAD, top + PAD, right + PAD, bottom + PAD)), dtype=np.float64)
    weights, line = _jaw_weights()
    drop = MAX_OPENING_PX * float(np.clip(opening, 0.0, 1.0)) * weights
    rows = np.arange(patch.shape[0], dtype=np.float64)[:, None] - drop
    above = np.clip(np.floor(rows).astype(np.int64), 0, patch.shape[0] - 2)
    frac = np.clip(rows - above, 0.0, 1.0)[..., None]
    columns = np.arange(patch.shape[1])[None, :]
    moved = patch[above, columns] * (1 - frac) + patch[above + 1, columns] * frac
    # The gap the lower lip leaves is the dark mouth cavity.
    gap = np.arange(top, bottom, dtype=np.float64)[:, None] - line
    # Anti-aliased edges; faded out where the gap is under a pixel, so no line is drawn past the corners.
    alpha = (np.clip(np.minimum(gap + 1.0, drop - gap), 0.0, 1.0) * np.clip(drop, 0.0, 1.0))[..., None]
    cavity = color_matrix(profile.hue_shift, profile.saturation, profile.brightness) @ CAVITY_RGB
    mouth = moved * (1 - alpha) + np.clip(cavity, 0, 255) * alpha
    if width != 1.0:
        mouth = _set_width(mouth, width, MAX_OPENING_PX * float(np.clip(opening, 0.0, 1.0)))
    return Image.fromarray(_to_uint8(mouth))


def _affine(
    profile: SpeakerProfile, pose: Pose, window: float, out_centre: tuple[float, float], out_side: float
) -> tuple[float, ...]:
    """PIL AFFINE coefficients mapping output pixels to padded-source pixels.

    The face centre lands on `out_centre`; `window` source pixels span `out_side` output pixels at
    scale 1; the face is rotated, mirrored and magnified by `profile.scale * pose.zoom`.
    """
    step = window / out_side / (profile.scale * pose.zoom)
    angle = np.deg2rad(profile.rotation_deg + pose.rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    flip = np.diag([-1.0 if profile.hflip else 1.0, 1.0])
    linear = step * rotation @ flip
    centre = np.array([out_centre[0] + pose.dx, out_centre[1] + pose.dy])
    offset = np.array(FACE_CENTRE) + PAD - linear @ centre
    return (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])


def _warp(
    profile: SpeakerProfile,
    opening: float,
    pose: Pose,
    size: tuple[int, int],
    coefficients: tuple[float, ...],
    width: float = 1.0,
) -> np.ndarray:
    """Shape the mouth (`opening`, lip `width`), warp to `size` (height, width) and relight: `(H, W, 3)`
    float32."""
    image = speaker_source(profile)
    if opening > 0 or width != 1.0:
        image = image.copy()
        patch = _open_mouth(image, profile, opening, width)
        image.paste(patch, (MOUTH_PATCH[0] + PAD, MOUTH_PATCH[1] + PAD))
    warped = image.transform((size[1], size[0]), Image.AFFINE, coefficients, resample=Image.BILINEAR)
    return np.asarray(warped, dtype=np.float32) * np.array(pose.light, dtype=np.float32)


def _head_mask(coefficients: tuple[float, ...], size: int, feather_px: float = 4.0) -> np.ndarray:
    """`(S, S)` alpha in [0, 1]: 1 inside the head ellipse of the source photo, soft at its edge."""
    a, b, c, d, e, f = coefficients
    v, u = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    x, y = a * u + b * v + c - PAD, d * u + e * v + f - PAD
    cx, cy, rx, ry = HEAD_ELLIPSE
    radius = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return np.clip((1.0 - radius) * min(rx, ry) / feather_px + 0.5, 0.0, 1.0)


def render_face_crop(
    profile: SpeakerProfile,
    opening: float,
    size: int,
    rng: np.random.Generator,
    masked: bool = False,
    width: float = 1.0,
) -> np.ndarray:
    """An aligned face crop, face centred: `(size, size, 3)` uint8.

    `masked` whitens everything outside the head ellipse (HQ-VoxCeleb's "masked_faces" style); `width` is
    the lips' width relative to rest.
    """
    pose = sample_pose(rng)
    coefficients = _affine(profile, pose, CROP_WINDOW, (size / 2, size / 2), size)
    image = _warp(profile, opening, pose, (size, size), coefficients, width)
    if masked:
        alpha = _head_mask(coefficients, size)[..., None]
        image = image * alpha + 255.0 * (1 - alpha)
    return _to_uint8(image)


def _frame_geometry(
    profile: SpeakerProfile, frame_size: int | tuple[int, int]
) -> tuple[tuple[int, int], tuple[float, float], int]:
    """(height, width), where the face centre goes, and the shorter side, of a full frame."""
    height, width = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    side = min(height, width)
    centre = (width / 2 + profile.frame_offset[0] * side, height / 2 + profile.frame_offset[1] * side)
    return (height, width), centre, side


def render_frame(
    profile: SpeakerProfile,
    opening: float,
    frame_size: int | tuple[int, int],
    rng: np.random.Generator,
    pose: Pose | None = None,
    width: float = 1.0,
) -> np.ndarray:
    """A full video frame with the face at the speaker's position: `(H, W, 3)` uint8.

    `frame_size` is a side or (height, width); `pose` None draws a fresh jitter from `rng`; `width` is the
    lips' width relative to rest.
    """
    pose = sample_pose(rng) if pose is None else pose
    size, centre, side = _frame_geometry(profile, frame_size)
    coefficients = _affine(profile, pose, FRAME_WINDOW, centre, side)
    image = _warp(profile, opening, pose, size, coefficients, width)
    return _to_uint8(image)


def render_frames(
    profile: SpeakerProfile,
    openings: np.ndarray,
    frame_size: int | tuple[int, int],
    rng: np.random.Generator,
    widths: np.ndarray | None = None,
) -> np.ndarray:
    """A talking-head clip, `(T, H, W, 3)` uint8, for per-frame mouth `openings` `(T,)` and lip `widths`
    `(T,)` (None: at rest).

    The head pose drifts smoothly from one jittered pose to another over the clip, as a real head would,
    instead of shaking frame to frame.
    """
    first, last = sample_pose(rng), sample_pose(rng, strength=0.5)
    frames = []
    for k, opening in enumerate(openings):
        t = k / max(len(openings) - 1, 1)
        pose = Pose(
            dx=(1 - t) * first.dx + t * last.dx,
            dy=(1 - t) * first.dy + t * last.dy,
            rotation_deg=(1 - t) * first.rotation_deg + t * last.rotation_deg,
            zoom=(1 - t) * first.zoom + t * last.zoom,
            light=first.light,
        )
        width = 1.0 if widths is None else float(widths[k])
        frames.append(render_frame(profile, float(opening), frame_size, rng, pose, width))
    return np.stack(frames)
