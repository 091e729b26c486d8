"""The analysis read of ``rainset pairs``: luma planes instead of RGB frames, and the speed
internals of the estimator (rainset._analysis_frames, rainset.registration) that must give the
answers of the plain computations."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest
from conftest import textured_background
from test_timelapse import structured_frames, structured_video  # noqa: F401 - a fixture

from rainset._analysis_frames import DecodedFrame, iter_decoded
from rainset.image import write_image
from rainset.registration import analysis_luma, mean_level, textured_tiles, tile_texture
from rainset.timelapse import StaticConfig, find_segments, score_frames
from rainset.video import iter_frames, probe, write_video


@pytest.fixture(scope="module")
def structured(structured_video):  # noqa: F811 - the fixture of that name, imported above
    """test_timelapse's structured clip (path, truth), under the name the tests here use."""
    return structured_video


@pytest.fixture(scope="module")
def colourful(tmp_path_factory):
    """Saturated colours (where luma of RGB and the Y plane differ most), turned 90 degrees."""
    rng = np.random.default_rng(4)
    bg = textured_background(120, 160, 7).astype(np.float32)
    bg[:, :, 0] *= 1.6  # push red to saturation in places
    frames = [np.clip(bg + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    path = tmp_path_factory.mktemp("luma") / "turned.mp4"
    write_video(path, frames, fps=10, crf=12, rotation=90)
    return path


@pytest.mark.parametrize("which", ["structured", "colourful"])
def test_decoded_frames_give_the_rgb_frames_of_iter_frames(which, request):
    path = request.getfixturevalue(which)
    path = path[0] if isinstance(path, tuple) else path
    decoded = list(iter_decoded(path))
    plain = list(iter_frames(path))
    assert len(decoded) == len(plain)
    for d, f in zip(decoded, plain):
        assert d.shape == f.shape
        assert np.array_equal(d.rgb(), f)


@pytest.mark.parametrize("which", ["structured", "colourful"])
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_luma_plane_is_the_luma_of_the_rgb_frame_within_a_level_or_two(which, factor, request):
    path = request.getfixturevalue(which)
    path = path[0] if isinstance(path, tuple) else path
    for d, f in zip(iter_decoded(path), iter_frames(path)):
        y = d.analysis_luma(factor)
        ref = analysis_luma(f, factor)
        assert y.shape == ref.shape and y.dtype == np.uint8
        diff = np.abs(y.astype(int) - ref)
        assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())


@pytest.mark.parametrize("codec, suffix", [("mjpeg", ".avi"), ("libx264", ".mp4")])
def test_full_range_yuv_is_used_as_is(tmp_path, codec, suffix):
    """JPEG-range streams (MJPEG cameras; H.264 flagged full range): no range expansion."""
    path = tmp_path / f"full{suffix}"
    img = textured_background(64, 96, 2)
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=10)
        st.width, st.height = 96, 64
        st.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        st.codec_context.color_range = 2
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame = frame.reformat(format=st.pix_fmt, dst_color_range=2)
            frame.color_range = 2
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    d = next(iter(iter_decoded(path)))
    assert d._av.format.name == "yuvj420p" or d._av.color_range == 2
    diff = np.abs(d.analysis_luma(1).astype(int) - analysis_luma(d.rgb(), 1))
    assert diff.mean() < 2.0, diff.mean()


def test_scores_on_luma_planes_give_the_segments_of_rgb_frames(structured):
    path, truth = structured
    rgb = list(score_frames(iter_frames(path)))
    luma = list(score_frames(iter_decoded(path)))
    assert [s.flag for s in luma] == [s.flag for s in rgb]
    assert [s.run for s in luma] == [s.run for s in rgb]
    assert find_segments(luma, min_length=10) == find_segments(rgb, min_length=10)
    for a, b in zip(luma, rgb):
        assert abs(a.brightness - b.brightness) < 2.0
        assert abs(a.foreground - b.foreground) < 0.02
        assert abs(a.cut - b.cut) < 0.02
        if min(a.confidence, b.confidence) >= 0.75:  # first frames of the pan: 4-5 tiles agree
            assert abs(a.dx - b.dx) < 0.1 and abs(a.dy - b.dy) < 0.1, (a, b)


def test_consistent_choice_on_luma_planes_differs_only_at_near_ties(structured):
    """The lowest-deviation frame of a bin can change where two frames' deviations from the
    median are within a tenth of a level of each other (RGB scores 0.025 apart on this clip)."""
    from rainset.timelapse import choose_frames

    path, _ = structured
    rgb = list(score_frames(iter_frames(path)))
    luma = list(score_frames(iter_decoded(path)))
    for seg in find_segments(rgb, min_length=10)[0]:
        a = choose_frames(seg, 10, select="consistent", scores=rgb)
        b = choose_frames(seg, 10, select="consistent", scores=luma)
        moved = [(i, j) for i, j in zip(a, b) if i != j]
        assert len(moved) <= 1, (seg, a, b)
        for i, j in moved:
            assert abs(rgb[i].deviation - rgb[j].deviation) < 0.1


def test_stabilised_scoring_on_luma_planes_finds_the_same_segments(structured):
    """With stabilisation a run ends only beyond 10 px: on the 3 px/frame pan that is a frame
    measured by 4 of 9 tiles, at the estimator's edge, where a level of difference moves the
    break a frame or three. The segments are the same ones, their bounds within 3 frames."""
    path, _ = structured
    cfg = StaticConfig(stabilize="similarity")
    rgb = find_segments(list(score_frames(iter_frames(path), config=cfg)), min_length=10)[0]
    luma = find_segments(list(score_frames(iter_decoded(path), config=cfg)), min_length=10)[0]
    assert [(s.begins, s.ends) for s in luma] == [(s.begins, s.ends) for s in rgb]
    for a, b in zip(luma, rgb):
        assert abs(a.start - b.start) <= 3 and abs(a.stop - b.stop) <= 3, (a, b)


def test_frame_folders_are_scored_as_before(tmp_path):
    frames, _ = structured_frames(seed=3)
    for i, f in enumerate(frames[:40]):
        write_image(tmp_path / f"f{i:03d}.png", f)
    assert list(score_frames(iter_decoded(tmp_path))) == list(score_frames(iter_frames(tmp_path)))


def test_decoded_frame_of_an_array_is_that_array():
    f = textured_background(48, 64, 1)
    d = DecodedFrame(f)
    assert d.rgb() is f and d.shape == f.shape
    assert np.array_equal(d.analysis_luma(2), analysis_luma(f, 2))


def test_pairs_analysis_converts_only_the_thumbnails_to_rgb(structured, monkeypatch):
    from rainset.pairs import analysis_pass

    path, _ = structured
    calls = []
    rgb = DecodedFrame.rgb
    monkeypatch.setattr(DecodedFrame, "rgb", lambda self: calls.append(1) or rgb(self))
    n = probe(path).frame_count  # the count the source declares, as rainset pairs passes it
    scores, segments, _, _, thumbs = analysis_pass(path, min_length=10, expected=n)
    assert n == len(scores) == 143 and len(segments) == 5
    assert [i for i, _ in thumbs.three()] == [0, 80, 142]  # stride 16: 0, 16, ..., 128, 142
    assert len(calls) == 3


@pytest.mark.parametrize("n", [1, 2, 3, 16, 17, 33, 49, 143, 1000])
def test_thumbnails_with_a_known_count_are_the_same(n):
    from rainset.pairs import _Thumbs

    class Lazy:
        made = 0

        def __init__(self, i):
            self.i = i

        def rgb(self):
            Lazy.made += 1
            return np.full((12, 16, 3), self.i % 251, np.uint8)

    eager, lazy = _Thumbs(), _Thumbs(expected=n)
    for i in range(n):
        eager.add(i, Lazy(i).rgb())
    Lazy.made = 0
    for i in range(n):
        lazy.add(i, Lazy(i))
    a, b = eager.three(), lazy.three()
    assert [i for i, _ in a] == [i for i, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
    assert Lazy.made <= 3


def test_thumbnails_of_a_miscounted_stream_are_real_frames():
    from rainset.pairs import _Thumbs

    for n, expected in [(10, 40), (40, 10), (100, 97)]:
        t = _Thumbs(expected=expected)
        for i in range(n):
            t.add(i, np.full((12, 16, 3), i, np.uint8))
        picks = t.three()
        assert picks[0][0] == 0 and picks[-1][0] == n - 1
        for i, img in picks:
            assert int(img[0, 0, 0]) == i


# ----------------------------------------------------------------------------- estimator internals


def test_textured_tiles_is_the_float_decision_of_tile_texture():
    rng = np.random.default_rng(1)
    near = 0
    for k in range(400):
        h, w = (int(v) for v in rng.integers(20, 200, 2))
        if k % 2:  # integer-valued textures right at the thresholds
            img = (rng.integers(0, 6, (h, w)) * rng.integers(1, 3)).astype(np.uint8)
        else:
            img = np.clip(rng.normal(100, 2.3, (h, w)), 0, 255).astype(np.uint8)
        thr = float(rng.choice([2.0, 2.5, 3.0, 4.0, 4.2, 5.0]))
        tex = tile_texture(img)
        near += int((np.abs(tex - thr) < 0.01).sum())
        assert np.array_equal(textured_tiles(img, thr), tex >= thr)
    assert near > 50  # the fallback to the float median was exercised


def test_mean_level_is_numpys_mean():
    rng = np.random.default_rng(2)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(2, 300, 2))
        img = rng.integers(0, 256, (h, w)).astype(np.uint8)
        for view in (img, img[::2, 1:], img.T, img[::-1, ::3]):
            assert mean_level(view) == float(view.mean())
    f = rng.random((5, 7)).astype(np.float32)
    assert mean_level(f) == float(f.mean())


# ----------------------------------------------------------------------------- decoding ahead


def test_decoding_ahead_gives_the_same_frames_and_scores(structured):
    path, _ = structured
    plain = list(score_frames(iter_decoded(path)))
    assert list(score_frames(iter_decoded(path, ahead=2))) == plain
    for a, b in zip(iter_decoded(path, ahead=1), iter_frames(path)):
        assert np.array_equal(a.rgb(), b)


def test_decoding_ahead_raises_the_decoders_error_at_the_damage(structured, tmp_path):
    from rainset.errors import InputError

    path, _ = structured
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError) as plain:
        list(iter_decoded(cut))
    with pytest.raises(InputError) as ahead:
        list(iter_decoded(cut, ahead=2))
    # The same frame; the detail is the decoder's, which says more or less depending on its
    # threads (decoding ahead leaves FFmpeg a thread fewer, see rainset._analysis_frames).
    stem = str(plain.value).split("frame ")[0]
    assert str(ahead.value).startswith(stem)
    assert re.search(r"stops after frame (\d+)", str(ahead.value)).group(1) == re.search(
        r"stops after frame (\d+)", str(plain.value)
    ).group(1)


def test_closing_early_stops_the_decoding_thread(structured):
    import threading

    path, _ = structured
    frames = iter_decoded(path, ahead=2)
    next(frames)
    assert any(t.name == "rainset-decode" for t in threading.enumerate())
    frames.close()
    assert not any(t.name == "rainset-decode" for t in threading.enumerate())


def test_a_scoring_error_stops_the_decoding_thread(structured, monkeypatch):
    import threading

    from rainset.pairs import analysis_pass
    from rainset.timelapse import StaticScorer

    path, _ = structured
    update = StaticScorer.update

    def failing(self, frame):
        if self._n_in == 5:
            raise RuntimeError("scorer failed")
        return update(self, frame)

    monkeypatch.setattr(StaticScorer, "update", failing)
    with pytest.raises(RuntimeError, match="scorer failed"):
        analysis_pass(path, min_length=10)
    assert not any(t.name == "rainset-decode" for t in threading.enumerate())


def test_find_pairs_opens_each_source_once_before_analysing_it(tmp_path, monkeypatch):
    import rainset
    import rainset.pairs as pairs_module

    bg = textured_background(64, 96, seed=5)
    g = np.random.default_rng(5)
    frames = [np.clip(bg + g.normal(0, 1.5, bg.shape), 0, 255).astype(np.uint8) for _ in range(40)]
    path = tmp_path / "static.mp4"
    write_video(path, frames, fps=10, crf=10)
    opened = []
    real = pairs_module.probe
    monkeypatch.setattr(pairs_module, "probe", lambda p, **kw: (opened.append(p), real(p, **kw))[1])
    result = rainset.find_pairs(path, tmp_path / "out")
    assert result.pairs  # the run did its work
    assert opened == [path]  # checked up front, and that probe reused by the scene's run
