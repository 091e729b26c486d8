"""The defaults that only make sense on a command line, in one place.

Every other option default comes from the library's option classes (:mod:`rainset.options`);
``tests/test_cli_defaults.py`` checks that each click default is the library's or one of these.
"""

from __future__ import annotations

from pathlib import Path

#: ``--review`` unset: ask at the terminal when there is one (``review_mode``), else refuse.
REVIEW_ON_A_TERMINAL = "prompt"

#: ``rainset synth`` without ``-o``: the dataset folder, and with ``--preview`` the sheet.
SYNTH_OUT = Path("rainset-synth")
PREVIEW_OUT = Path("preview.png")

#: ``rainset demo`` (and ``build-gt --example``): the folder, the clip's frames, the photo.
DEMO_OUT = Path("rainset-demo")
DEMO_FRAMES = 60
DEMO_PHOTO = "coffee"

#: Command-line spellings whose default is the library's in another form (a string the option
#: parses): option name -> how the library value is written.
#: ``--start`` "0" (BuildOptions.start), ``--mask-threshold`` "13" (BuildOptions.mask_threshold),
#: synth's ``--angles``, ``--radii``, ``--density``, ``--length``, ``--brightness`` (SynthConfig).
TEXT_DEFAULTS = ("start", "mask_threshold", "angles", "radii", "densities", "length", "brightness")

#: The review page (``--review web``, ``rainset review``): loopback only, any free port.
WEB_HOST = "127.0.0.1"
WEB_PORT = 0

#: ``rainset validate`` without DATASET: the current folder.
DATASET_HERE = "."
