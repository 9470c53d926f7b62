"""The library's own errors: a user's mistake, not a bug.

``python -m disen_jax.main`` prints such an error as one line, ``error: <message>``, and exits
with status 1; any other exception is a bug and keeps its traceback. Both subclass
``ValueError``, so code that catches a ``ValueError`` from a check keeps working.
"""


class Error(ValueError):
  """A mistake in the input: the message names the config field, flag or file at fault."""


class ConfigError(Error):
  """A config field, flag or combination of them that cannot work."""


class DataError(Error):
  """A dataset, file or folder that cannot be read as the config says."""
