"""Datasets out of (and into) the layouts other trainers read.

One module per format; each writes through :mod:`rainset.dataset` (``open_dataset``,
``Dataset.samples()``, ``pairs()``, ``path()``), the one owner of rainset's own layout:

- :mod:`~rainset.exchange.basicsr` -- flat ``gt/`` + ``lq/`` (or Restormer's ``target/`` +
  ``input/``) with equal names and ``meta_info.txt``;
- :mod:`~rainset.exchange.hf` -- a Hugging Face ``datasets`` image folder with paired columns;
- :mod:`~rainset.exchange.webdataset` -- tar shards of ``KEY.rainy.png``, ``KEY.clean.png``, ...;
- :mod:`~rainset.exchange.spa` -- SPA-Data's folders and ``real_world.txt``, optionally patches;
- :mod:`~rainset.exchange.gtrain` -- GT-Rain's scene folders of ``*-R-*`` and ``*-C-000``.

Every export has ``split`` (``all``: ``OUT/<split>/...``, list files and shards prefixed with
the split) and, where files are placed rather than packed, ``link`` (hard links where the
filesystem allows, else copies; an image is never re-encoded unless the layout needs another
format). An export refuses a dataset that fails ``rainset check`` and a non-empty output
folder unless it holds an unfinished export of the same dataset with the same options, which
it resumes. The ``read_*`` functions find the pairs of a folder in each published layout (the
importers' part). See ``docs/exchange.md``.
"""

from __future__ import annotations

import os
from typing import Literal

from rainset.dataset import Dataset
from rainset.errors import ParameterError
from rainset.exchange._common import (
    FORMATS,
    LINKS,
    ExportResult,
    Layout,
    LayoutPair,
    decode_name,
    encode_name,
    import_plans,
)

__all__ = [
    "FORMATS",
    "LINKS",
    "ExportResult",
    "Layout",
    "LayoutPair",
    "import_plans",
    "export",
    "encode_name",
    "decode_name",
]


def export(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    to: Literal["basicsr", "hf", "webdataset", "spa", "gtrain"],
    split: str = "all",
    link: Literal["symlink", "hardlink", "copy"] | None = None,
    names: Literal["basicsr", "restormer"] | None = None,
    shard_size: str | int | None = None,
    patch: int | None = None,
    stride: int | None = None,
    progress=None,
) -> ExportResult:
    """Export a dataset to ``to``'s layout in ``out`` (the format's own function does the work).

    Options a format does not have are refused (``names``: basicsr; ``shard_size``:
    webdataset; ``patch``, ``stride``: spa; ``link``: all but webdataset, whose shards hold
    the bytes).

    Raises
    ------
    ParameterError
        An unknown format, or an option the format does not have.
    """
    given = {"names": names, "shard_size": shard_size, "patch": patch, "stride": stride,
             "link": link}
    allowed = {
        "basicsr": {"names", "link"},
        "hf": {"link"},
        "webdataset": {"shard_size"},
        "spa": {"patch", "stride", "link"},
        "gtrain": {"link"},
    }
    if to not in allowed:
        raise ParameterError("to", f"must be one of {', '.join(FORMATS)}, got {to!r}")
    for k, v in given.items():
        if v is not None and k not in allowed[to]:
            raise ParameterError(k, f"does not apply to the {to} format")
    common = {"split": split, "progress": progress}
    if to == "basicsr":
        from rainset.exchange.basicsr import export_basicsr

        if names is None:
            return export_basicsr(dataset, out, link=link, **common)
        return export_basicsr(dataset, out, link=link, names=names, **common)
    if to == "hf":
        from rainset.exchange.hf import export_hf

        return export_hf(dataset, out, link=link, **common)
    if to == "webdataset":
        from rainset.exchange.webdataset import export_webdataset

        if shard_size is None:
            return export_webdataset(dataset, out, **common)
        return export_webdataset(dataset, out, shard_size=shard_size, **common)
    if to == "spa":
        from rainset.exchange.spa import export_spa

        return export_spa(dataset, out, link=link, patch=patch, stride=stride, **common)
    from rainset.exchange.gtrain import export_gtrain

    return export_gtrain(dataset, out, link=link, **common)
