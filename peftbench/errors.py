"""Errors of a run's checks before any work, in a module of their own: the checks (validate) and the code
below them (the data reader) both raise them, and neither may import the other."""


class ConfigError(ValueError):
    """A composed config that cannot run: a usage error, raised before any work."""


class MissingDataError(ConfigError, FileNotFoundError):
    """A data folder without a task's file: this machine's setup, not the config's, so a grid that met it runs
    the cell again once the file is there (its error type is not one of the published grid's refusals)."""
