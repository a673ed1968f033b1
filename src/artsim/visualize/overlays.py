"""Draw detections on a painting: figure skeletons (BlazePose connections) and face boxes.

Both functions return a new RGB image and leave the one passed in untouched. Line widths grow
with the image (about 1/150 of its shorter side, at least 2 px) so overlays stay visible on
thumbnails and on full-size scans alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from artsim.records import Pose

# a few well-separated colours (colour-blind friendly order), one per figure
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 220, 255),
    (255, 176, 0),
    (255, 60, 120),
    (120, 255, 80),
    (170, 110, 255),
    (255, 255, 255),
)
BOX_COLOUR = (255, 214, 10)
MIN_VISIBILITY = 0.5  # keypoints below this are not drawn (nor the limbs touching them)


@functools.lru_cache(maxsize=1)
def pose_connections() -> tuple[tuple[int, int], ...]:
    """BlazePose's skeleton: mediapipe.solutions.pose.POSE_CONNECTIONS, in a stable order."""
    import mediapipe as mp

    return tuple(sorted((int(a), int(b)) for a, b in mp.solutions.pose.POSE_CONNECTIONS))


def line_width(image: Image.Image) -> int:
    return max(2, round(min(image.size) / 150))


def _rgb_copy(image: Image.Image) -> Image.Image:
    return image.convert("RGB") if image.mode != "RGB" else image.copy()


def draw_poses(
    image: Image.Image,
    poses: Sequence[Pose],
    *,
    color: tuple[int, int, int] | None = None,
    min_visibility: float = MIN_VISIBILITY,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """A copy of `image` with each pose's skeleton (confident keypoints only) drawn on it.

    color: one colour for every figure; None gives each figure its own from PALETTE.
    labels: a text per pose (e.g. its figure number), written in its colour above the highest
    of its confident keypoints inside the picture (none if no such keypoint), so that a figure
    in a list can be found in the picture.
    Keypoints are in the pixels of `image`.
    """
    if labels is not None and len(labels) != len(poses):
        raise ValueError(f"draw_poses: {len(poses)} poses but {len(labels)} labels")
    out = _rgb_copy(image)
    draw = ImageDraw.Draw(out)
    width = line_width(out)
    radius = width + 1
    connections = pose_connections()
    font = ImageFont.load_default(size=max(12, 6 * width))
    for n, pose in enumerate(poses):
        fill = color or PALETTE[n % len(PALETTE)]
        pts = [(float(x), float(y)) for x, y in pose.keypoints]
        seen = [float(v) >= min_visibility for v in pose.visibility]
        for a, b in connections:
            if a < len(pts) and b < len(pts) and seen[a] and seen[b]:
                draw.line([pts[a], pts[b]], fill=fill, width=width)
        for (x, y), ok in zip(pts, seen, strict=False):
            if ok:
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius], fill=fill, outline=(0, 0, 0)
                )
        # BlazePose places limbs cut by the frame outside the picture: anchor on what is inside
        shown = [
            (x, y)
            for (x, y), ok in zip(pts, seen, strict=False)
            if ok and 0 <= x < out.width and 0 <= y < out.height
        ]
        if labels is not None and labels[n] and shown:
            # above the highest confident keypoint in the picture, kept inside it
            x, y = min(shown, key=lambda p: p[1])
            left, top, right, bottom = draw.textbbox((0, 0), labels[n], font=font)
            tx = min(max(0.0, x - (right - left) / 2), out.width - (right - left))
            ty = min(max(0.0, y - radius - (bottom - top) - 2 * width), out.height - bottom)
            draw.rectangle(
                [tx + left - 2, ty + top - 2, tx + right + 2, ty + bottom + 2], fill=(0, 0, 0)
            )
            draw.text((tx, ty), labels[n], fill=fill, font=font)
    return out


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    *,
    color: tuple[int, int, int] = BOX_COLOUR,
) -> Image.Image:
    """A copy of `image` with (x, y, w, h) boxes (e.g. `Face.box`) and optional labels drawn."""
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"draw_boxes: {len(boxes)} boxes but {len(labels)} labels")
    out = _rgb_copy(image)
    draw = ImageDraw.Draw(out)
    width = line_width(out)
    font = ImageFont.load_default()
    for i, box in enumerate(boxes):
        x, y, w, h = (float(v) for v in box[:4])
        draw.rectangle([x, y, x + w, y + h], outline=color, width=width)
        if labels is not None and labels[i]:
            text = str(labels[i])
            tx, ty = x, max(0.0, y - 12 - width)
            left, top, right, bottom = draw.textbbox((tx, ty), text, font=font)
            draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=(0, 0, 0))
            draw.text((tx, ty), text, fill=color, font=font)
    return out


__all__ = ["PALETTE", "draw_boxes", "draw_poses", "line_width", "pose_connections"]
