"""The review page's server, board and look-ahead, over real HTTP on 127.0.0.1 (no browser).

Browser tests (Playwright + Debian's chromium) are in tests/test_review_web_browser.py.
"""

import hashlib
import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from conftest import rain_frames, textured_background  # noqa: E402
from dscompare import assert_same_dataset  # noqa: E402

from rainset.buildgt import BuildOptions  # noqa: E402
from rainset.review import Candidate, ReviewLog, file_reviewer  # noqa: E402
from rainset.web import Board, ReviewServer, WebReviewer, build_lookahead, dataset_board, safe_file  # noqa: E402


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


def _cand(scene="s", n=8, seed=0):
    img = np.random.default_rng(seed).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    frames = np.stack([img] * 3)
    return Candidate(scene, 0, n, img, score=1.5, info={"p_hat": 40, "drift": 0.01, "frames": frames})


@pytest.fixture
def served():
    board = Board("build")
    server = ReviewServer(board).start()
    yield board, server, f"http://127.0.0.1:{server.port}"
    server.stop()


def test_every_request_needs_the_token(served):
    board, server, base = served
    item = board.add_candidate(_cand())
    t = server.token
    for path in ("/", "/static/review.js", "/api/state", f"/api/image/{item.id}/clean"):
        assert _get(base + path)[0] == 403
        assert _get(base + path + "?token=wrong")[0] == 403
        assert _get(base + path + "?token=" + t[:-1])[0] == 403
        assert _get(base + path + "?token=" + t)[0] == 200
    # The page sets a cookie of this port; with it, no query is needed.
    assert _get(base + "/", {"Cookie": f"rainset_token_{server.port}={t}"})[0] == 200
    assert _get(base + "/", {"Cookie": f"rainset_token_1={t}x"})[0] == 403
    # A decision needs the token in its header: the cookie alone (another site's form) is not enough.
    body = {"id": item.id, "action": "accept"}
    assert _post(base + "/api/decide", body, {"Cookie": f"rainset_token_{server.port}={t}"})[0] == 403
    assert _post(base + f"/api/decide?token={t}", body)[0] == 403
    assert item.status == "pending"
    code, reply = _post(base + "/api/decide", body, {"X-Rainset-Token": t})
    assert code == 200 and reply["item"]["status"] == "accept"


def test_served_clean_image_is_the_candidates_pixels(served):
    import cv2

    board, server, base = served
    cand = _cand()
    item = board.add_candidate(cand)
    code, data = _get(base + f"/api/image/{item.id}/clean?token={server.token}")
    assert code == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(shown, cand.clean)
    code, data = _get(base + f"/api/image/{item.id}/rainy/2?token={server.token}")
    assert code == 200
    assert _get(base + f"/api/image/{item.id}/rainy/3?token={server.token}")[0] == 404
    assert _get(base + f"/api/image/nope/clean?token={server.token}")[0] == 404


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/pyproject.toml", "/static/..%2fpyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static//etc/passwd", "//etc/passwd", "/static/index.html",
    "/api/image/c0/rainy/..%2f..%2fetc%2fpasswd", "/api/image/c0/rainy/%2fetc%2fpasswd",
    "/api/image/c0/tier/..%2f..%2fetc%2fpasswd", "/api/image/c0/clean/../../../../etc/passwd",
])
def test_no_path_reaches_a_file(served, path):
    board, server, base = served
    board.add_candidate(_cand())
    code, body = _get(base + path + ("&" if "?" in path else "?") + "token=" + server.token)
    assert code in (400, 403, 404), (path, code)
    assert b"root:" not in body and b"[project]" not in body


def test_safe_file_refuses_dotdot_absolute_and_links_out(tmp_path):
    root = tmp_path / "ds"
    (root / "clean").mkdir(parents=True)
    (root / "clean" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret.png").write_bytes(b"outside")
    os.symlink(tmp_path / "secret.png", root / "clean" / "out.png")
    os.symlink(root / "clean" / "a.png", root / "clean" / "in.png")
    os.symlink(tmp_path, root / "up")
    assert safe_file(root, "clean/a.png") == (root / "clean" / "a.png").resolve()
    assert safe_file(root, "clean/in.png") is not None  # a link that stays inside
    for bad in ("clean/out.png", "up/secret.png", "../secret.png", "clean/../../secret.png",
                str(tmp_path / "secret.png"), "/etc/passwd", "clean\\..\\..\\secret.png", "clean/missing.png",
                "clean/./a.png", "", "clean"):
        assert safe_file(root, bad) is None, bad


def test_two_tabs_first_decision_wins(served):
    board, server, base = served
    item = board.add_candidate(_cand())
    h = {"X-Rainset-Token": server.token}
    code1, r1 = _post(base + "/api/decide", {"id": item.id, "action": "reject", "reason": "streaks"}, h)
    code2, r2 = _post(base + "/api/decide", {"id": item.id, "action": "accept"}, h)
    assert code1 == 200 and code2 == 409
    assert r2["item"]["status"] == "reject" and r2["item"]["reason"] == "streaks"  # the second tab sees it
    state = json.loads(_get(base + f"/api/state?token={server.token}")[1])
    assert [i["status"] for i in state["items"]] == ["reject"]


def test_decided_live_images_are_released_beyond_the_kept_number(monkeypatch):
    import rainset.web.board as B

    monkeypatch.setattr(B, "KEEP_DECIDED", 2)
    board = Board("build")
    items = [board.add_candidate(_cand(f"s{i}")) for i in range(4)]
    for it in items:
        board.decide(it.id, "accept")
        board.wait(it.id)
    assert [it.images.clean() is not None for it in items] == [False, False, True, True]
    assert items[0].figures["released"] and items[1].images.count == 0
    assert items[3].images.rainy(0) is not None and items[3].images.rainy(1) is None  # frames released


def test_reviewer_blocks_until_the_page_decides(served):
    board, server, base = served
    got = []
    t = threading.Thread(target=lambda: got.append(WebReviewer(board)(_cand())))
    t.start()
    for _ in range(200):
        items = board.items()
        if items:
            break
        threading.Event().wait(0.02)
    assert not got  # still waiting for the page
    _post(base + "/api/decide", {"id": items[0].id, "action": "more"}, {"X-Rainset-Token": server.token})
    t.join(10)
    assert got[0].action == "more" and got[0].by == "web"


def _clips(tmp_path, n=3):
    from rainset.video import write_video

    jobs = []
    for i in range(n):
        p = tmp_path / f"clip{i}.mp4"
        write_video(p, rain_frames(textured_background(32, 40, i), 30, seed=i), fps=10, crf=10)
        jobs.append((p, f"clip{i}", None))
    return jobs


def _outputs(out, opts):
    from rainset.dataset import DatasetWriter, SplitRule

    params = opts.params()
    return (DatasetWriter(out, kind="paired", params=params, split_rule=SplitRule(), tool="rainset build-gt"),
            ReviewLog(out / "review.json", params=params))


def test_lookahead_estimates_ahead_and_writes_what_a_replay_writes(tmp_path):
    """Later inputs' candidates reach the page while the first waits; decided out of order,
    the dataset is the one --review file writes from the same decisions, in input order."""
    jobs = _clips(tmp_path)
    opts = BuildOptions(density="sparse", frames=6, max_frames=16)
    board = Board("build")
    decided = []

    def page():  # decides the last input first; "more" on the first
        while len(decided) < 4:
            pending = [i for i in board.items() if i.status == "pending"]
            if len(pending) == 3 or (decided and pending):
                it = sorted(pending, key=lambda i: i.scene)[-1] if len(pending) == 3 else pending[0]
                action = "more" if (it.scene == "clip0" and it.n == 6) else "accept"
                assert board.decide(it.id, action)[0]
                decided.append((it.key, action))
            threading.Event().wait(0.02)

    t = threading.Thread(target=page, daemon=True)
    t.start()
    writer, log = _outputs(tmp_path / "web", opts)
    with writer:
        events = list(build_lookahead(jobs, writer, log, WebReviewer(board), opts, board=board))
    t.join(10)
    assert decided[0][0] == "clip2/w00/n6"  # all three candidates existed before any decision
    assert ("clip0/w00/n6", "more") in decided and ("clip0/w00/n16", "accept") in decided
    assert [e.scene for e in events if e.kind == "written"] == ["clip0", "clip1", "clip2"]
    assert all(i.figures["score"] is not None for i in board.items())  # scored, every one, on the page
    writer2, log2 = _outputs(tmp_path / "file", opts)
    from rainset.buildgt import build_scene

    with writer2:
        for src, scene, _sha in jobs:
            list(build_scene(src, writer2, log2, file_reviewer(tmp_path / "web" / "review.json"), opts, scene=scene))
    web = json.loads((tmp_path / "web" / "review.json").read_text())
    assert {d["by"] for d in web["decisions"].values()} == {"web"}
    for d in web["decisions"].values():
        d["by"] = "file"
    (tmp_path / "web" / "review.json").write_text(json.dumps(web, indent=1, sort_keys=True) + "\n")
    # Who decided is recorded (web, file); everything else must be the same bytes.
    manifest = tmp_path / "web" / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"reviewed_by": "web"', '"reviewed_by": "file"'))
    assert_same_dataset(tmp_path / "web", tmp_path / "file")


def test_lookahead_stops_waiting_threads_on_interrupt(tmp_path):
    jobs = _clips(tmp_path, 2)
    opts = BuildOptions(density="sparse", frames=6, max_frames=16)
    board = Board("build")
    writer, log = _outputs(tmp_path / "out", opts)
    with writer:
        events = build_lookahead(jobs, writer, log, WebReviewer(board), opts, board=board)
        next(e for e in events if e.kind == "candidate")
        events.close()  # what Ctrl-C in the caller does
    assert [t for t in threading.enumerate() if t.name.startswith("rainset-lookahead")] == []
    assert log.decisions == {}


def _items(board, n):
    """The board's items once it has ``n`` (a candidate event comes just before the reviewer is asked)."""
    for _ in range(500):
        if len(board.items()) >= n:
            return board.items()
        threading.Event().wait(0.02)
    raise AssertionError(f"the board has {len(board.items())} items, not {n}")


def test_interrupted_web_review_resumes_with_the_earlier_decisions_queued(tmp_path):
    jobs = _clips(tmp_path, 1)
    opts = BuildOptions(density="sparse", frames=6, max_frames=16)
    board = Board("build")
    writer, log = _outputs(tmp_path / "out", opts)
    with writer:
        events = build_lookahead(jobs, writer, log, WebReviewer(board), opts, board=board)
        next(e for e in events if e.kind == "candidate")
        (item,) = _items(board, 1)
        assert board.decide(item.id, "more")[0]
        next(e for e in events if e.kind == "candidate" and e.count == 16)
        _items(board, 2)
        events.close()  # Ctrl-C with N = 16 on the page
    assert sorted(log.decisions) == ["clip0/w00/n6"]
    board = Board("build")
    writer, log = _outputs(tmp_path / "out", opts)
    with writer:
        events = build_lookahead(jobs, writer, log, WebReviewer(board), opts, board=board)
        next(e for e in events if e.kind == "candidate")
        earlier, new = _items(board, 2)
        assert (earlier.n, earlier.status, new.n, new.status) == (6, "more", 16, "pending")
        assert new.prev == earlier.id and board.counts()["windows"] == 1
        assert board.decide(new.id, "accept")[0]
        list(events)
    assert {k: d["action"] for k, d in log.decisions.items()} == {"clip0/w00/n6": "more", "clip0/w00/n16": "accept"}


def _built(tmp_path):
    """A build-gt dataset (two windows: accepted, rejected after more)."""
    from click.testing import CliRunner

    from rainset_cli.main import cli

    (tmp_path / "in").mkdir()
    jobs = _clips(tmp_path / "in", 1)
    out = tmp_path / "OUT"
    dec = tmp_path / "dec.json"
    body = {"version": 1, "params": {}, "decisions": {
        "clip0/w00/n6": {"action": "more", "scene": "clip0", "window": 0, "n_frames": 6},
        "clip0/w00/n16": {"action": "accept", "scene": "clip0", "window": 0, "n_frames": 16},
    }}
    dec.write_text(json.dumps(body))
    base = ["build-gt", str(jobs[0][0]), "--density", "sparse", "--frames", "6", "--max-frames", "16"]
    r = CliRunner().invoke(cli, [*base, "--review", "file", "--decisions", str(dec), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out, base


def test_dataset_board_changes_land_in_review_json_and_replay(tmp_path):
    from click.testing import CliRunner

    from rainset.dataset import check
    from rainset_cli.main import cli

    out, base = _built(tmp_path)
    board, log = dataset_board(out)
    items = board.items()
    assert [(i.n, i.status, i.history) for i in items] == [(6, "more", True), (16, "accept", False)]
    last = items[-1]
    served = last.images.clean()
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256((out / "clean/clip0/w00.png").read_bytes()).hexdigest()
    assert last.images.count == 16
    # Earlier candidates are history: they cannot be changed.
    assert not board.decide(items[0].id, "accept")[0]
    # Two tabs that saw revision 0: the first change wins, the second is told.
    ok, item, _ = board.decide(last.id, "reject", "streaks", by="review", expect_rev=0)
    assert ok
    ok2, item2, msg = board.decide(last.id, "accept", by="review", expect_rev=0)
    assert not ok2 and item2.status == "reject" and "another tab" in msg
    on_disk = json.loads((out / "review.json").read_text())["decisions"]
    assert on_disk["clip0/w00/n16"]["action"] == "reject" and on_disk["clip0/w00/n16"]["reason"] == "streaks"
    assert sorted(on_disk) == ["clip0/w00/n16", "clip0/w00/n6"]  # nothing lost, nothing added
    # The replay leaves the rejected window out (an empty dataset is one clear error).
    r = CliRunner().invoke(cli, [*base, "--review", "file", "--decisions", str(out / "review.json"), "-o", str(tmp_path / "OUT2")])
    assert r.exit_code == 1 and "every window was rejected" in r.output
    # Back to accept: the replay is the original dataset again.
    assert board.decide(last.id, "accept", by="review", expect_rev=1)[0]
    r = CliRunner().invoke(cli, [*base, "--review", "file", "--decisions", str(out / "review.json"), "-o", str(tmp_path / "OUT3")])
    assert r.exit_code == 0, r.output
    assert check(tmp_path / "OUT3") == []
    assert (tmp_path / "OUT3/clean/clip0/w00.png").read_bytes() == (out / "clean/clip0/w00.png").read_bytes()


def test_dataset_board_more_is_estimated_again_by_the_replay(tmp_path):
    from click.testing import CliRunner

    from rainset.dataset import open_dataset
    from rainset_cli.main import cli

    (tmp_path / "in").mkdir()
    jobs = _clips(tmp_path / "in", 1)
    base = ["build-gt", str(jobs[0][0]), "--density", "sparse", "--frames", "6", "--max-frames", "26"]
    r = CliRunner().invoke(cli, [*base, "--review", "accept", "-o", str(tmp_path / "OUT")])
    assert r.exit_code == 0, r.output
    board, _ = dataset_board(tmp_path / "OUT")
    (item,) = board.items()
    assert item.n == 6 and item.can_grow
    assert board.decide(item.id, "more", by="review", expect_rev=0)[0]
    dec = json.loads((tmp_path / "OUT/review.json").read_text())["decisions"]
    assert dec["clip0/w00/n6"]["action"] == "more" and dec["clip0/w00/n16"]["action"] == "accept"
    r = CliRunner().invoke(cli, [*base, "--review", "file", "--decisions", str(tmp_path / "OUT/review.json"),
                                 "-o", str(tmp_path / "OUT2")])
    assert r.exit_code == 0, r.output
    assert {s["n_frames"] for s in open_dataset(tmp_path / "OUT2").samples()} == {16}
    # Changing "more" back removes the provisional next decision again.
    assert board.decide(item.id, "accept", by="review", expect_rev=1)[0]
    dec = json.loads((tmp_path / "OUT/review.json").read_text())["decisions"]
    assert sorted(dec) == ["clip0/w00/n6"]


def test_dataset_images_linking_out_are_not_served(tmp_path):
    out, _ = _built(tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    frame = out / "rain/clip0/w00/f000003.png"
    frame.unlink()
    os.symlink(secret, frame)
    clean = out / "clean/clip0/w00.png"
    clean.unlink()
    os.symlink(secret, clean)
    board, _ = dataset_board(out)
    server = ReviewServer(board).start()
    try:
        last = board.items()[-1]
        base = f"http://127.0.0.1:{server.port}/api/image/{last.id}"
        assert _get(f"{base}/rainy/2?token={server.token}")[0] == 200
        for path in ("rainy/3", "clean"):
            code, body = _get(f"{base}/{path}?token={server.token}")
            assert code == 404 and b"secret" not in body
    finally:
        server.stop()


def test_review_json_keeps_every_entry_under_concurrent_changes(tmp_path):
    out, _ = _built(tmp_path)
    board, _ = dataset_board(out)
    last = board.items()[-1]
    results = []

    def tab(action):
        results.append(board.decide(last.id, action, by="review", expect_rev=None)[0])

    threads = [threading.Thread(target=tab, args=("reject" if i % 2 else "accept",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and last.rev == 16
    on_disk = json.loads((out / "review.json").read_text())["decisions"]
    assert sorted(on_disk) == ["clip0/w00/n16", "clip0/w00/n6"]
    assert on_disk["clip0/w00/n16"]["action"] == last.status
    assert not list(out.glob(".review.json.tmp*"))


def test_rainset_review_refuses_a_dataset_a_build_is_writing(tmp_path):
    from click.testing import CliRunner

    from rainset.lock import FolderLock
    from rainset_cli.main import cli

    out, _ = _built(tmp_path)
    before = (out / "review.json").read_bytes()
    with FolderLock(out, what="the dataset"):
        r = CliRunner().invoke(cli, ["review", str(out)])
    assert r.exit_code == 1 and "lock" in r.output.lower(), r.output
    assert (out / "review.json").read_bytes() == before
