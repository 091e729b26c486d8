"""The reference trainer (torch only; ``pip install rainset[train]``).

- :func:`validate` -- train SPANet on a dataset, evaluate it, write the report
  (:mod:`rainset.train.validation`);
- :func:`derain_files` -- apply a trained model to images, folders and videos
  (:mod:`rainset.train.derain`);
- :mod:`rainset.train.spanet` -- SPANet (276,704 parameters) and its spatial attentive module;
- :mod:`rainset.train.irnn` -- the four-direction IRNN, pure PyTorch, three implementations,
  and a compiled CPU kernel for inference;
- :mod:`rainset.train.losses` -- L1 + (1 - SSIM) + attention MSE; the time-lapse losses L_b,
  L_s, L_v; the rain-direction loss;
- :mod:`rainset.train.objectives` -- the ``paired`` and ``timelapse`` objectives, the
  rain-direction term, SPANet's identity start;
- :mod:`rainset.train.data` -- items, scene splits, augmented patches from a rainset dataset;
- :mod:`rainset.train.loop` -- presets, :class:`~rainset.train.loop.Trainer`, checkpoints, DDP;
- :mod:`rainset.train.report` -- evaluation next to the identity baseline, report files;
- :mod:`rainset.train.derain` -- loading checkpoints, tiled inference.

Nothing is imported here, so ``import rainset.train`` stays cheap; torch loads with the
submodules (and with the first call of :func:`validate` or :func:`derain_files`). Scoring
other models' outputs needs no torch: :mod:`rainset.evaluate`. See ``docs/train.md``.
"""

from __future__ import annotations

__all__ = ["validate", "derain_files"]


def validate(dataset, out, *, options=None, progress=None, **kwargs):
    """Train SPANet on ``dataset``'s train split and report on its test split.

    See :func:`rainset.train.validation.validate` (this wrapper imports torch on first use).
    """
    from rainset.train.validation import validate as run

    return run(dataset, out, options=options, progress=progress, **kwargs)


def derain_files(checkpoint, inputs, out, *, options=None, progress=None, **kwargs):
    """Apply a trained SPANet to images, folders and videos.

    See :func:`rainset.train.derain.derain_files` (this wrapper imports torch on first use).
    """
    from rainset.train.derain import derain_files as run

    return run(checkpoint, inputs, out, options=options, progress=progress, **kwargs)
