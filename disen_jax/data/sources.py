"""Imports every built-in source so that it registers itself."""
# pylint: disable=unused-import
from disen_jax.data import folders  # noqa: F401
from disen_jax.data import synthetic  # noqa: F401
from disen_jax.data import synthfaces  # noqa: F401
