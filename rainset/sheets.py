"""Sheets: the pictures rainset draws for a person to look at, from labelled tiles.

Every preview, contact sheet and example grid is built here, from a few pieces:

- :func:`fit_width` shrinks (or, asked to, stretches) a tile to a width, keeping its aspect;
- :func:`magnify` enlarges a crop by an integer factor, nearest neighbour, so pixels stay
  visible; :func:`zoom_for` picks that factor, :func:`centre_box` and :func:`busiest_box` the
  crop;
- :func:`label` writes a caption into a tile's top-left corner (optionally on a filled box);
  :func:`band` is a strip holding a title; :func:`captioned` puts a band above a tile;
- :func:`hstack`, :func:`vstack` and :func:`grid` lay tiles out in rows, padding unequal heights
  and widths with a fill colour, with optional gutters.

The sheets built from them: build-gt's review preview (:func:`rainset.review.preview_sheet`),
synth's angle x radius contact sheet and tier sheets (:func:`rainset.synth.preview_sheet`,
:func:`rainset.synth.tier_sheet`), pairs' contact sheets (:func:`rainset.pairs.contact_sheet`)
and the trainer's example grid (:func:`rainset.train.report.example_grid`). No other library
module draws text on an image (``tests/test_sheets.py`` checks it).

Conventions: tiles are ``(H, W, 3) uint8`` RGB; colours are RGB triples; text is OpenCV's
Hershey simplex font, whose ``scale`` 1.0 is about 22 px tall. Every function returns a new
C-contiguous array and leaves its inputs untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "BLACK",
    "WHITE",
    "fit_width",
    "magnify",
    "zoom_for",
    "centre_box",
    "busiest_box",
    "label",
    "band",
    "captioned",
    "hstack",
    "vstack",
    "grid",
]

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]  # y0, x0, height, width


# ----------------------------------------------------------------------------- sizes and crops


def fit_width(img: np.ndarray, width: int, *, upscale: bool = False) -> np.ndarray:
    """``img`` resized to ``width`` pixels wide, aspect kept (area interpolation).

    An image already at most ``width`` wide is returned as it is unless ``upscale``.

    Returns
    -------
    tile : (round(H * width / W), width, 3) uint8 ndarray (the height at least 1)
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    h, w = img.shape[:2]
    if w == width or (w < width and not upscale):
        return img.copy()
    size = (int(width), max(1, round(h * width / w)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def magnify(img: np.ndarray, factor: int) -> np.ndarray:
    """``img`` enlarged ``factor`` times by pixel repetition (nearest neighbour)."""
    if int(factor) < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    h, w = img.shape[:2]
    return cv2.resize(img, (w * int(factor), h * int(factor)), interpolation=cv2.INTER_NEAREST)


def zoom_for(width: float, crop_width: int, *, most: int = 4) -> int:
    """The magnification (1 .. ``most``) that brings a ``crop_width`` crop closest to ``width``."""
    return max(1, min(int(most), round(width / max(1, crop_width))))


def centre_box(shape: tuple[int, ...], fraction: int = 4) -> Box:
    """The central ``1 / fraction`` crop of an image of ``shape``: ``(y0, x0, height, width)``."""
    h, w = shape[:2]
    ch, cw = max(1, h // fraction), max(1, w // fraction)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def busiest_box(values: np.ndarray, fraction: int = 4) -> Box:
    """The ``1 / fraction`` crop of a ``(H, W)`` map where its local mean is largest.

    Used to zoom on the region where two images differ most (surviving rain streaks).

    Returns
    -------
    box : ``(y0, x0, height, width)``, inside the map
    """
    if values.ndim != 2:
        raise ValueError(f"values must be (H, W), got {values.shape}")
    h, w = values.shape
    ch, cw = max(1, h // fraction), max(1, w // fraction)
    mean = cv2.boxFilter(values.astype(np.float32), -1, (cw, ch), normalize=True)
    y, x = np.unravel_index(int(np.argmax(mean)), mean.shape)
    y0 = int(np.clip(y - ch // 2, 0, h - ch))
    x0 = int(np.clip(x - cw // 2, 0, w - cw))
    return y0, x0, ch, cw


# ----------------------------------------------------------------------------- text


def label(
    img: np.ndarray,
    text: str,
    *,
    scale: float | None = None,
    thickness: int | None = None,
    colour: Colour = WHITE,
    box: Colour | None = None,
    at: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """A copy of ``img`` with ``text`` written in its top-left corner.

    Parameters
    ----------
    img : (H, W, 3) uint8 ndarray
    text : the caption (ASCII; the Hershey font has no other glyphs).
    scale : font scale; None: in proportion to the tile, ``max(0.4, W / 900)``.
    thickness : stroke width in pixels; None: ``max(1, round(2 * scale))``.
    colour : the text's RGB colour.
    box : an RGB colour to fill a rectangle behind the text with (for legibility on any
        picture), or None for text straight on the picture.
    at : the text's baseline origin ``(x, y)``; None: 4 px from the left, just below the top.
    antialias : smooth strokes (``cv2.LINE_AA``) or plain 8-connected lines.

    Returns
    -------
    tile : (H, W, 3) uint8 ndarray
    """
    out = np.ascontiguousarray(img).copy()
    if scale is None:
        scale = max(0.4, out.shape[1] / 900)
    if thickness is None:
        thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    if at is None:
        at = (4, th + 4)
    if box is not None:
        cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), tuple(int(c) for c in box), -1)
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    cv2.putText(out, text, tuple(int(v) for v in at), _FONT, scale, tuple(int(c) for c in colour),
                int(thickness), line)
    return out


def band(
    text: str,
    width: int,
    *,
    height: int = 24,
    scale: float = 0.5,
    thickness: int = 1,
    colour: Colour = BLACK,
    background: Colour = WHITE,
    at: tuple[int, int] = (4, 17),
    antialias: bool = True,
) -> np.ndarray:
    """A ``(height, width, 3)`` strip of ``background`` with ``text`` on it: a title row."""
    if width < 1 or height < 1:
        raise ValueError(f"band must be at least 1 x 1, got {width} x {height}")
    strip = np.empty((int(height), int(width), 3), np.uint8)
    strip[:] = background
    return label(strip, text, scale=scale, thickness=thickness, colour=colour, at=at,
                 antialias=antialias)


def captioned(
    img: np.ndarray,
    text: str,
    *,
    height: int = 26,
    margin: int = 2,
    scale: float = 0.5,
    colour: Colour = WHITE,
    background: Colour = BLACK,
) -> np.ndarray:
    """``img`` under a caption band, with ``margin`` px of ``background`` left and right.

    Returns
    -------
    tile : (H + height, W + 2 * margin, 3) uint8 ndarray
    """
    body = np.empty((img.shape[0], img.shape[1] + 2 * margin, 3), np.uint8)
    body[:] = background
    body[:, margin : margin + img.shape[1]] = img
    head = band(text, body.shape[1], height=height, scale=scale, colour=colour,
                background=background, at=(4, min(18, height - 2)))
    return np.ascontiguousarray(np.concatenate([head, body], axis=0))


# ----------------------------------------------------------------------------- layout


def hstack(tiles: Sequence[np.ndarray], *, gutter: int = 0, fill: int = 0) -> np.ndarray:
    """Tiles side by side, top-aligned; shorter ones padded below with ``fill``.

    ``gutter`` px columns of ``fill`` separate neighbours.
    """
    if not tiles:
        raise ValueError("hstack needs at least one tile")
    h = max(t.shape[0] for t in tiles)
    parts: list[np.ndarray] = []
    for i, t in enumerate(tiles):
        if i and gutter:
            parts.append(np.full((h, gutter, 3), fill, np.uint8))
        parts.append(np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=fill))
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def vstack(
    rows: Sequence[np.ndarray], *, gutter: int = 0, fill: int = 0, width: int | None = None
) -> np.ndarray:
    """Rows one above the other, left-aligned; narrower ones padded on the right with ``fill``.

    ``width``: pad every row to this width (default: the widest row's); ``gutter`` px rows of
    ``fill`` separate neighbours.
    """
    if not rows:
        raise ValueError("vstack needs at least one row")
    w = max(r.shape[1] for r in rows) if width is None else int(width)
    if any(r.shape[1] > w for r in rows):
        raise ValueError(f"a row is wider than width={w}")
    parts: list[np.ndarray] = []
    for i, r in enumerate(rows):
        if i and gutter:
            parts.append(np.full((gutter, w, 3), fill, np.uint8))
        parts.append(np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=fill))
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def grid(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    gutter: int = 0,
    fill: int = 0,
    title: str = "",
    width: int | None = None,
) -> np.ndarray:
    """Rows of tiles (each row an :func:`hstack`), stacked with :func:`vstack`.

    ``title``: a white-on-black :func:`band` above the grid.

    Returns
    -------
    sheet : (H, W, 3) uint8 ndarray
    """
    lines = [hstack(r, gutter=gutter, fill=fill) for r in rows]
    sheet = vstack(lines, gutter=gutter, fill=fill, width=width)
    if title:
        head = band(title, sheet.shape[1], height=36, scale=0.7, thickness=2, colour=WHITE,
                    background=BLACK, at=(8, 25), antialias=False)
        sheet = np.concatenate([head, sheet], axis=0)
    return np.ascontiguousarray(sheet)
