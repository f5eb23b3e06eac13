"""The errors a user can fix, in a module that imports nothing heavy, so that every ``pblf`` command can catch them
without paying for torch at start-up."""


class ConfigError(ValueError):
    """A configuration that the pipeline refuses; the message names the key and what is allowed."""


class DataError(RuntimeError):
    """A data set that is missing, corrupt or refused; the message says what to do."""
