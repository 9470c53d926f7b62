"""Test setup: 8 simulated CPU devices (set before JAX initializes its backend)."""
import os
import sys

os.environ.setdefault("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import pytest  # noqa: E402  pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # for `configs`
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")


def load_config(name: str, arg: str | None = "test"):
  """``configs/<name>.py`` with ``get_config(arg)``."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"configs.{name}").get_config(arg)


@pytest.fixture(scope="session")
def num_devices():
  return jax.device_count()
