"""Numba's on-disk cache, keyed on every source file a kernel is built from.

Numba keys a cached function on its own file only, but fastbp's kernels inline ``model.py``, ``kernels_step.py``,
``fastmath.py`` and the diagnostics' trackers, and freeze the constants of ``compile_time.py``: an
edit there would keep serving the old machine code. Importing this module (before any
``cache=True`` decoration) registers cache locators that add those files' hashes to the key of
every function defined in the fastbp package (and in ``KEYED_DIRS``). Functions elsewhere are
untouched. If a future Numba moves these internals, caching falls back to Numba's own key.
"""

import hashlib
import os

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
KEYED_DIRS = {_PACKAGE_DIR}  # directories whose functions get this key (tests/conftest.py adds tests/)
_SHARED_SOURCES = ("fastmath.py", "model.py", "kernels_step.py", "kernels_diagnostics.py", "compile_time.py")


def _source_stamp(py_file):
    digest = hashlib.sha256()
    for path in (py_file, *(os.path.join(_PACKAGE_DIR, name) for name in _SHARED_SOURCES)):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def _register():
    try:
        from numba.core import caching

        bases = [caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator]
        implementation = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        registry = implementation._locator_classes
    except AttributeError:
        return
    if any(getattr(cls, "_fastbp", False) for cls in registry):
        return

    def make(base):
        class Locator(base):
            _fastbp = True

            def get_source_stamp(self):
                return _source_stamp(self._py_file)

            @classmethod
            def from_function(cls, py_func, py_file):
                if os.path.dirname(os.path.abspath(py_file)) not in KEYED_DIRS:
                    return None
                return super().from_function(py_func, py_file)

        Locator.__name__ = f"Fastbp{base.__name__}"
        return Locator

    registry[:0] = [make(base) for base in bases]


_register()
