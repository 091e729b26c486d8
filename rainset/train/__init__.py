"""The reference trainer (torch only; ``pip install rainset[train]``).

- :mod:`rainset.train.spanet` -- SPANet (276,704 parameters) and its spatial attentive module;
- :mod:`rainset.train.irnn` -- the four-direction IRNN, pure PyTorch, three implementations;
- :mod:`rainset.train.losses` -- L1 + (1 - SSIM) + attention MSE;
- :mod:`rainset.train.data` -- items, scene splits, augmented patches from a rainset dataset;
- :mod:`rainset.train.loop` -- presets, :class:`~rainset.train.loop.Trainer`, checkpoints, DDP;
- :mod:`rainset.train.report` -- evaluation next to the identity baseline, report files;
- :mod:`rainset.train.derain` -- loading checkpoints, tiled inference.

Nothing is imported here, so ``import rainset.train`` stays cheap; torch loads with the
submodules. See ``docs/train.md``.
"""
