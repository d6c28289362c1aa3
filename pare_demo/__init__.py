"""pare-demo: PARE (Part Attention Regressor) re-implemented, with tools to inspect it."""

__version__ = "0.1.0"
