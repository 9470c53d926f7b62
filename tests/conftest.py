"""Test setup: 8 simulated CPU devices (set before JAX initializes its backend)."""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"

# One persistent XLA compilation cache per test run, shared by the xdist workers and the
# subprocesses the tests start: equal programs compile once (e.g. the :test step of
# cross_domain on MNIST and on facades, which differ only in their data). Removed at the end.
XLA_CACHE = os.path.join(tempfile.gettempdir(), "disen_jax_tests_xla_cache_"
                         + os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid())))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", XLA_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import pytest  # noqa: E402  pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # for `configs`
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")


def load_config(name: str, arg: str | None = "test"):
  """``configs/<name>.py`` with ``get_config(arg)``."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"configs.{name}").get_config(arg)


def data_config(source: str, **fields):
  """``config.data`` of ``source`` (every field at its default) with ``fields`` set."""
  from disen_jax import config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.data(source)
  c.update(fields)
  return c


@pytest.fixture(scope="session")
def num_devices():
  return jax.device_count()


def pytest_sessionfinish(session):
  if not hasattr(session.config, "workerinput"):  # the xdist controller, or a run without xdist
    shutil.rmtree(XLA_CACHE, ignore_errors=True)
