"""Compare two dataset folders the way issue 15 defines "the same dataset".

Two datasets are the same when every image file and every manifest and pairs line is identical,
and ``rainset.json`` and ``review.json`` are equal except for the creation time, the decision
times and the recorded tool name. Leftover atomic-write temp files (``.NAME.tmp-*``) count as a
difference: a finished dataset has none.

Use from a test (pytest puts ``tests/`` on ``sys.path``)::

    from dscompare import assert_same_dataset
    assert_same_dataset(out_interrupted, out_reference)
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".exr", ".pgm", ".ppm"}
LINE_FILES = ("manifest.jsonl", "pairs.jsonl")
JSON_FILES = ("rainset.json", "review.json")
# rainset.json keys that may differ between two runs of the same dataset.
META_IGNORED = ("created", "tool")
# keys of each review.json decision that may differ.
DECISION_IGNORED = ("time",)


def _is_temp(rel: str) -> bool:
    return ".tmp-" in Path(rel).name or Path(rel).name.endswith(".tmp")


def _files(root: Path, ignore: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if not any(fnmatch.fnmatch(rel, pat) for pat in ignore):
                out[rel] = p
    return out


def _lines(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").splitlines()


def _normal_meta(path: Path) -> dict | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if path.name == "rainset.json":
        for k in META_IGNORED:
            data.pop(k, None)
    elif path.name == "review.json":
        for d in (data.get("decisions") or {}).values():
            if isinstance(d, dict):
                for k in DECISION_IGNORED:
                    d.pop(k, None)
    return data


def dataset_differences(a, b, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """The ways the datasets in folders ``a`` and ``b`` differ (empty when they are the same).

    ``ignore``: glob patterns of relative paths (``"previews/*"``) left out of the image check.
    """
    a, b = Path(a), Path(b)
    problems: list[str] = []
    for root in (a, b):
        if not (root / "rainset.json").exists():
            problems.append(f"{root}: no rainset.json")
    fa, fb = _files(a, ignore), _files(b, ignore)
    for root, files in ((a, fa), (b, fb)):
        temps = sorted(rel for rel in files if _is_temp(rel))
        if temps:
            problems.append(f"{root}: leftover temp files {temps[:5]}")
    ia = {r for r in fa if Path(r).suffix.lower() in IMAGE_SUFFIXES and not _is_temp(r)}
    ib = {r for r in fb if Path(r).suffix.lower() in IMAGE_SUFFIXES and not _is_temp(r)}
    if ia - ib:
        problems.append(f"images only in {a}: {sorted(ia - ib)[:5]} ({len(ia - ib)} in all)")
    if ib - ia:
        problems.append(f"images only in {b}: {sorted(ib - ia)[:5]} ({len(ib - ia)} in all)")
    differing = sorted(r for r in ia & ib if fa[r].read_bytes() != fb[r].read_bytes())
    if differing:
        problems.append(f"images that differ: {differing[:5]} ({len(differing)} in all)")
    for name in LINE_FILES:
        la, lb = _lines(a / name), _lines(b / name)
        if la == lb:
            continue
        if la is None or lb is None:
            problems.append(f"{name}: present in only one dataset")
            continue
        if len(la) != len(lb):
            problems.append(f"{name}: {len(la)} lines vs {len(lb)}")
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                problems.append(f"{name} line {i + 1} differs:\n  {x}\n  {y}")
                break
    for name in JSON_FILES:
        ma, mb = _normal_meta(a / name), _normal_meta(b / name)
        if ma != mb:
            if ma is None or mb is None:
                problems.append(f"{name}: present in only one dataset")
                continue
            keys = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
            detail = "; ".join(f"{k}: {ma.get(k)!r} vs {mb.get(k)!r}" for k in keys)
            problems.append(f"{name} differs in {detail[:2000]}")
    return problems


def assert_same_dataset(a, b, *, ignore: tuple[str, ...] = ()) -> None:
    """Fail (AssertionError listing every difference) unless ``a`` and ``b`` hold the same dataset."""
    problems = dataset_differences(a, b, ignore=ignore)
    assert not problems, f"datasets {a} and {b} differ:\n- " + "\n- ".join(problems)
