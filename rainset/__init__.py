"""rainset: build deraining datasets people can trust.

Conventions, stated once for the whole package:

- Frames are ``(H, W, 3) uint8`` RGB at every public boundary; stacks are ``(T, H, W, 3)``.
  BGR exists only inside :mod:`rainset.video` and :mod:`rainset.image`.
- Inside computations images are ``float32`` in [0, 1] where a float is needed.
- Angles are in degrees from vertical: 0 = rain falling straight down the image, positive =
  the streak's top leans right on screen.
- Randomness is passed as ``rng: np.random.Generator | int | None``.

Importing rainset does no work and never imports torch; :mod:`rainset.train` and the optional
GPU back-ends import it on request.
"""

__version__ = "0.1.0"

from rainset.errors import (  # noqa: E402
    FormatError,
    InputError,
    ParameterError,
    RainsetError,
    ReviewFileError,
)

#: The pipeline calls, imported on first use (``import rainset`` stays cheap): name -> module.
_LAZY = {
    "build_gt": "rainset.pipelines.gt",
    "find_pairs": "rainset.pipelines.pairs",
    "synthesize": "rainset.pipelines.synth",
    "import_dataset": "rainset.pipelines.exchange",
    "export_dataset": "rainset.pipelines.exchange",
}

__all__ = [
    "__version__",
    "RainsetError",
    "InputError",
    "FormatError",
    "ReviewFileError",
    "ParameterError",
    *_LAZY,
]


def __getattr__(name: str):
    # A module-level __getattr__ (PEP 562): the pipeline modules load when a call is first used.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rainset' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
