"""EXIF orientation is honoured on read, as OpenCV's default reader and phone galleries do."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from rainset.dataset import open_dataset
from rainset.image import exif_orientation, read_image, read_image_oriented
from rainset_cli.main import cli


def _exif_app1(orientation: int, order: bytes = b"II") -> bytes:
    """An APP1 segment whose IFD0 holds only the Orientation tag."""
    o = "little" if order == b"II" else "big"
    tiff = order + (42).to_bytes(2, o) + (8).to_bytes(4, o) + (1).to_bytes(2, o)
    tiff += (0x0112).to_bytes(2, o) + (3).to_bytes(2, o) + (1).to_bytes(4, o)
    tiff += orientation.to_bytes(2, o) + b"\0\0" + (0).to_bytes(4, o)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body


def phone_jpeg(path, rgb: np.ndarray, orientation: int, order: bytes = b"II"):
    """Write ``rgb`` as a JPEG stored sideways-as-is with an EXIF orientation tag."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    data = buf.tobytes()
    path.write_bytes(data[:2] + _exif_app1(orientation, order) + data[2:])
    return path


def _stored():
    """A 24x40 image whose corners differ, so every flip and turn is told apart."""
    img = np.zeros((24, 40, 3), np.uint8)
    img[:12, :20] = (250, 10, 10)
    img[:12, 20:] = (10, 250, 10)
    img[12:, :20] = (10, 10, 250)
    img[12:, 20:] = (250, 250, 10)
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("order", [b"II", b"MM"])
def test_read_matches_opencvs_default_reader(tmp_path, orientation, order):
    path = phone_jpeg(tmp_path / "p.jpg", _stored(), orientation, order)
    assert exif_orientation(path.read_bytes()) == orientation
    ours, applied = read_image_oriented(path)
    assert applied == orientation
    theirs = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # OpenCV applies EXIF
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs).max() <= 2


def test_portrait_phone_photo_is_upright(tmp_path):
    path = phone_jpeg(tmp_path / "p.jpg", _stored(), 6)
    img = read_image(path)
    assert img.shape[:2] == (40, 24)  # turned 90 degrees clockwise
    assert img[2, -2, 0] > 200 and img[2, -2, 1] < 50  # the stored top-left (red) is top-right


def test_synth_stores_a_phone_photo_upright_and_records_it(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    big = cv2.resize(_stored(), (160, 96), interpolation=cv2.INTER_NEAREST)
    phone_jpeg(photos / "portrait.jpg", big, 6)
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["-q", "synth", str(photos), "-o", str(out), "--angles", "0",
                                 "--test-fraction", "0"])
    assert r.exit_code == 0, r.output
    ds = open_dataset(out)
    (rec,) = list(ds.samples())
    clean = ds.load(rec, "clean")
    assert clean.shape[:2] == (160, 96)  # portrait, as the phone shows it
    notes = " ".join(s.get("note", "") for s in ds.meta["sources"])
    assert "EXIF orientation 6" in notes
