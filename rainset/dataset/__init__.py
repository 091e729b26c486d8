"""The one on-disk dataset format every rainset pipeline writes: write, read, check.

A dataset is a folder holding ``rainset.json`` (what it is and how it was made),
``manifest.jsonl`` (one JSON record a line) and image folders; a time-lapse dataset adds
``pairs.jsonl``. Every path inside a record is relative to the folder, with ``/`` separators.
The specification, with examples, is ``docs/format.md``; this package is its reference
implementation, and the only code that knows the file names, the folders and the extension
rule (``tests/test_format_owner.py``).

Kinds
-----
``paired``
    One sample a line: ``id, scene, split, rainy, clean`` and optionally ``mask, rain_map,
    residual, tiers, semantic, window, frame, labels`` and any other JSON field.
``timelapse``
    One frame a line: ``id, scene, split, frame, index`` and optionally ``mask`` (foreground)
    and ``clean`` (pseudo ground truth of the frame's segment, shared by its frames);
    ``pairs.jsonl`` holds ``id, scene, split, a, b`` with ``a``, ``b`` frame ids.

Splits are by scene, never by frame (:class:`SplitRule`). The writer appends one fsync'd line
per record, so an interrupted run loses at most the line being written, and reopening the
folder resumes it (:class:`DatasetWriter`).

Modules
-------
``layout``   file and folder names, the extension rule, every sample's relative paths
``rules``    kinds, splits, :class:`SplitRule`, record and ``rainset.json`` checks
``jsonl``    the one JSONL reader (and line writer)
``images``   writing images: the extension rule applied, encoders (sync or pooled)
``writer``   :class:`DatasetWriter` (``resume``: reopening an unfinished folder)
``worker``   :class:`WriterHandle`, the writer's picklable handle for worker processes
``reader``   :func:`open_dataset`, :class:`Dataset`
``checks``   :func:`check`, :class:`Problem`, :func:`image_size`
"""

from __future__ import annotations

from rainset.dataset import layout
from rainset.dataset.checks import Problem, check, image_size
from rainset.dataset.images import Encoder, SyncEncoder, store_image
from rainset.dataset.jsonl import iter_jsonl, read_jsonl, scan_jsonl
from rainset.dataset.layout import MANIFEST, META, PAIRS, REVIEW, is_dataset
from rainset.dataset.reader import Dataset, load_meta, open_dataset
from rainset.dataset.rules import FORMAT_VERSION, KINDS, SPLITS, SplitRule, hash_source, scene_unit
from rainset.dataset.worker import WorkerWriter, WriterHandle
from rainset.dataset.writer import DatasetWriter

#: Names of the dataset's files (as before the package; also ``layout.META`` ...).
META_NAME = META
MANIFEST_NAME = MANIFEST
PAIRS_NAME = PAIRS
REVIEW_NAME = REVIEW

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "MANIFEST_NAME",
    "META_NAME",
    "PAIRS_NAME",
    "REVIEW_NAME",
    "SPLITS",
    "Dataset",
    "DatasetWriter",
    "Encoder",
    "Problem",
    "SplitRule",
    "SyncEncoder",
    "WorkerWriter",
    "WriterHandle",
    "check",
    "hash_source",
    "image_size",
    "is_dataset",
    "iter_jsonl",
    "layout",
    "load_meta",
    "open_dataset",
    "read_jsonl",
    "scan_jsonl",
    "scene_unit",
    "store_image",
]
