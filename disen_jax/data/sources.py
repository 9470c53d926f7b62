"""Imports every built-in source so that it registers itself."""
# pylint: disable=unused-import
from disen_jax.data import synthetic  # noqa: F401

try:  # Sources added by later work register themselves when present.
  from disen_jax.data import folders  # noqa: F401
except ImportError:  # pragma: no cover
  pass
try:
  from disen_jax.data import synthfaces  # noqa: F401
except ImportError:  # pragma: no cover
  pass
