"""Read the official SMPL .pkl files without chumpy, and without running pickled code.

The released SMPL pickles (python 2) hold numpy arrays, a scipy sparse J_regressor and
`chumpy.ch.Ch` objects wrapping arrays. A restricted unpickler maps every chumpy class
to a stand-in that keeps only the wrapped array, allows the numpy and scipy classes the
files need and the containers a chumpy object's state holds, and refuses everything else.

A chumpy object pickles its `__dict__` less `_parents` and `_cache`: the array `x` beside
bookkeeping such as `_dirty_vars` (a set), `_itr` (None), `_make_dense`/`_make_sparse`
(bools) and `_depends_on_deps` (a dict), so python 2 files name `__builtin__.set`."""
from __future__ import annotations

import codecs
import copyreg
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps its state dict."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}

    def to_array(self) -> np.ndarray:
        if "x" not in self.state:
            raise ValueError("a chumpy object in the file is not a plain array (no 'x' value)")
        return np.asarray(self.state["x"])


try:  # numpy 2 moved the core module; pickles name either
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core import multiarray as _multiarray

_NUMPY_CORE = {"numpy.core.multiarray", "numpy._core.multiarray"}
_ALLOWED = {
    **{(m, "_reconstruct"): _multiarray._reconstruct for m in _NUMPY_CORE},
    **{(m, "scalar"): _multiarray.scalar for m in _NUMPY_CORE},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("builtins", "object"): object,
    # Protocol-2 pickles written by python 3 spell bytes as _codecs.encode(text, "latin1").
    ("_codecs", "encode"): codecs.encode,
    ("__builtin__", "object"): object,
    # Chumpy's bookkeeping holds sets; building one from the listed items runs no code of the file's.
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.startswith("scipy.sparse") and name in _SPARSE:
            return getattr(scipy.sparse, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a body model file")


def _plain(value):
    if isinstance(value, _ChumpyStandIn):
        return value.to_array()
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
    return value


def read_smpl_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of an SMPL-format .pkl (chumpy or plain), keyed as in the file."""
    with open(path, "rb") as f:
        data = _RestrictedUnpickler(f, encoding="latin1").load()
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold an SMPL model dictionary")
    return {key: _plain(value) for key, value in data.items()}
