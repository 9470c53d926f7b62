"""Helpers for config files (``configs/*.py``), which are loaded by path, not imported."""
from __future__ import annotations

import importlib.util
import os


def sibling_config(config_file: str, name: str, arg: str | None = None):
  """``get_config(arg)`` of ``<name>.py`` in the folder of ``config_file`` (a config's ``__file__``),
  so one config can build on another wherever the configs folder lives."""
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)), f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"disen_jax_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)
