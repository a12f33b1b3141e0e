"""The versions that decide a render's bytes, recorded beside datasets and suites and compared on resume.

The engine's plans are the same everywhere, but NumPy, OpenCV and Pillow builds may round arithmetic or encode
images differently (docs/dataset-format.md, Limits), so a folder rendered under one set is not resumed under another,
and every Dask worker must match the process that plans.
"""

from __future__ import annotations


def libraries() -> dict[str, str]:
    """Versions of the libraries that render and encode."""
    import cv2
    import numpy
    import PIL

    return {"numpy": numpy.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}


def environment() -> dict[str, str]:
    """The engine's version and the libraries': everything besides the inputs that decides the output bytes."""
    import degrade

    return {"patina": degrade.__version__, **libraries()}
