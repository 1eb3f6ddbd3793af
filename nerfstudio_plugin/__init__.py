"""nerfstudio integration of splatent-viewer (the ``splatent`` method for ``ns-train``).

Everything nerfstudio-specific lives in this package; the core (``splatent_viewer``) does not
import nerfstudio.
"""
