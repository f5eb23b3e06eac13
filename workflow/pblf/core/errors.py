"""The errors a user can fix, in a module that imports nothing heavy, so that every ``pblf`` command can catch them
without paying for torch at start-up.

The line between a user error and a bug is the line between one clear message and a traceback: ``pblf`` prints a
:class:`UserError` as one line naming the value and the fix and exits with :data:`EXIT_USER_ERROR`; every other
exception is a bug in pblf and keeps its traceback (exit status 1), so that it can be reported and fixed rather than
mistaken for a typo. Each subclass also derives from the built-in type that callers of the library would expect
(``ValueError`` for bad values, ``RuntimeError`` for an environment that cannot do the job).
"""

import signal

#: Exit status of a command that stopped on a :class:`UserError` (argparse uses the same for bad arguments).
EXIT_USER_ERROR = 2
#: Exit status after a Ctrl-C, as a shell reports a process ended by SIGINT; and what ``pblf`` says then, once, in
#: place of a traceback (a Ctrl-C reaches every job of a terminal's process group, and Snakemake shows their logs).
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted; rerun the same command to continue (finished runs and checkpoints are kept)"
#: Exit status after a preemption signal (SLURM's SIGTERM, or SIGUSR1 before a time limit): "try again"
#: (EX_TEMPFAIL), which a scheduler retries; whatever the command finished, and a training run's checkpoint, is kept.
EXIT_PREEMPTED = 75
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """A preemption signal stopped the command: inside a training loop after saving the state, anywhere else at
    once (between the last epoch and the records, say)."""


class UserError(Exception):
    """Something the user can fix; the message names the file or value and what to do."""


class ConfigError(UserError, ValueError):
    """A configuration that the pipeline refuses; the message names the key and what is allowed."""


class InputError(UserError, ValueError):
    """An input file that is missing, unreadable or malformed; the message names the file (and line and column)."""


class OutputError(UserError, RuntimeError):
    """An output that cannot be written (a read-only folder, a full disk); the message names the path."""


class DataError(UserError, RuntimeError):
    """A data set that is missing, corrupt or refused; the message says what to do."""


class DeviceError(UserError, RuntimeError):
    """A device that the configuration asks for but this machine does not have."""
