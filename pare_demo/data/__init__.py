"""Dataset readers shared by training and the app: 3DPW (and our synthetic sets in its
layout) and MPII. Each yields Sample records (pare_demo.data.samples)."""
from pare_demo.data.samples import Sample

__all__ = ["Sample"]
