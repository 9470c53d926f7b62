"""Imports every built-in source so that it registers itself."""
# pylint: disable=unused-import
from disen_jax.data import cars3d  # noqa: F401
from disen_jax.data import coil20  # noqa: F401
from disen_jax.data import colored_mnist  # noqa: F401
from disen_jax.data import folders  # noqa: F401
from disen_jax.data import photo_mnist  # noqa: F401
from disen_jax.data import pix2pix  # noqa: F401
from disen_jax.data import synthetic  # noqa: F401
from disen_jax.data import synthfaces  # noqa: F401
from disen_jax.data import tfds_sources  # noqa: F401
