"""disen_jax: disentangled representations and image-to-image translation in JAX/Flax."""
import os as _os

import jax as _jax

__version__ = "0.1.0"

# The "partitionable" Threefry (JAX's default) takes XLA:CPU 10-20x longer to compile than the
# classic one (measured on jax 0.10.2: 5 normal draws in one jit, 21 s vs 1.3 s), and every
# init and train step here draws random numbers. The classic Threefry gives the same numbers for
# any device count or sharding too (it is only less efficient to generate *sharded* on a pod), so
# the library uses it everywhere: same config + same seed = same numbers. Set the environment
# variable JAX_THREEFRY_PARTITIONABLE=1 to keep JAX's default.
if "JAX_THREEFRY_PARTITIONABLE" not in _os.environ:
  _jax.config.update("jax_threefry_partitionable", False)
