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

__all__ = [
    "__version__",
    "RainsetError",
    "InputError",
    "FormatError",
    "ReviewFileError",
    "ParameterError",
]
