"""A PyTorch reference of the ``uncoop`` and ``cyclegan`` networks and train steps, for the step
benchmark (``experiments/bench_steps.py``) and for tests that the two implementations compute the
same numbers (``tests/test_reference_torch.py``).

* ``nets``: the ResNet translator (plain, R-stream, entangler), the 70x70 PatchGAN (spectral or
  instance norm) layer for layer as ``disen_jax.nn``, with the flax parameter names, and
  ``load_flax`` to copy a flax state into them.
* ``steps``: one training step of each method (losses, freezing, Adam, history buffer, adversary
  update) as the JAX methods do it, with the CycleGAN reference defaults taken from the config.

Needs the optional ``bench`` extra (``pip install -e .[bench]``: a CPU build of torch).
"""
