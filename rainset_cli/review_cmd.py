"""``rainset review DATASET``: the review page on a finished dataset; the page for ``--review web``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import click

from rainset_cli import cli_defaults
from rainset_cli.common import console

#: Seconds the page stays served after a build's last decision, so that open tabs see the end.
LINGER_S = 1.5


def web_options(f):
    """``--host`` and ``--port`` of the review page (build-gt ``--review web``, review)."""
    f = click.option("--port", type=click.IntRange(0, 65535), default=cli_defaults.WEB_PORT, show_default=True,
                     help="Port of the review page (0: a free one).")(f)
    f = click.option("--host", default=cli_defaults.WEB_HOST, show_default=True,
                     help="Address the review page listens on (loopback by default; reach it from "
                          "another machine with the printed ssh -L line).")(f)
    return f


def check_web_options(review: str, host: str, port: int) -> None:
    """``--host``/``--port`` belong to ``--review web``."""
    if review != "web":
        for name, value, default in (("--host", host, cli_defaults.WEB_HOST), ("--port", port, cli_defaults.WEB_PORT)):
            if value != default:
                raise click.BadParameter("only used with --review web", param_hint=name)
        return
    require_web()


def require_web() -> None:
    from rainset.errors import RainsetError
    from rainset.web import WEB_INSTALL, web_available

    if not web_available():
        raise RainsetError(WEB_INSTALL + ".")


def announce(server) -> None:
    """The page's URL (with its token) and the ssh line, on stdout even with -q."""
    console.print(f"review page: {server.url}", markup=False)
    console.print(f"from another machine: {server.ssh_line()}", markup=False)


@contextmanager
def web_reviewer(host: str = cli_defaults.WEB_HOST, port: int = cli_defaults.WEB_PORT, *, tiers: bool = False):
    """A :class:`rainset.web.WebReviewer` (``tiers``: :class:`~rainset.web.TierWebReviewer`)
    with its page served for the duration of the block."""
    require_web()
    from rainset.web import Board, ReviewServer, TierWebReviewer, WebReviewer

    if tiers:
        board = Board("tiers", title="rainset synth: low-pass tiers", final=True)
    else:
        board = Board("build", title="rainset build-gt")
    server = ReviewServer(board, host=host, port=port)
    server.start()
    announce(server)
    try:
        yield (TierWebReviewer if tiers else WebReviewer)(board)
        board.finish("finished: every " + ("photo" if tiers else "window") + " is decided")
        time.sleep(LINGER_S)
    finally:
        server.stop()


@click.command("review")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@web_options
def review(dataset: Path, host: str, port: int) -> None:
    """Reopen the review page on a finished DATASET to revisit its decisions.

    build-gt datasets show every window's last candidate (earlier N for comparison); synth
    datasets made with --tier-choice review show each photo's clean image and its low-pass
    tiers. A changed decision is written to DATASET/review.json at once; rebuild with
    `rainset build-gt ... -o OUT2 --review file --decisions DATASET/review.json`. Ends with the
    page's "finish review" button or Ctrl-C.
    """
    require_web()
    from rainset.dataset.layout import review_path
    from rainset.lock import FolderLock
    from rainset.web import ReviewServer, dataset_board

    board, _log = dataset_board(dataset)
    server = ReviewServer(board, host=host, port=port)  # binds: a port in use fails here
    try:
        # The dataset's lock: no build-gt may write the folder (or its review.json) meanwhile.
        with FolderLock(dataset, what="the dataset"):
            server.start()
            announce(server)
            while not board.finished:
                time.sleep(0.2)
            time.sleep(0.3)  # the page shows that it is over
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"Review closed; every change is in {review_path(dataset)}.") from None
    finally:
        server.stop()  # also when the lock is refused: the socket bound above is closed
    click.echo(f"review closed; every change is in {review_path(dataset)}", err=True)


commands = [review]
