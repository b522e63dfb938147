"""Exceptions raised by scfill.

Every problem caused by the user's input (a file, a matrix, a parameter) raises
:class:`InputError`; the command line turns it into exit code 2. Its message names the
problem and the fix.
"""

from __future__ import annotations


class ScfillError(Exception):
    """Base class of every error scfill raises on purpose."""


class InputError(ScfillError, ValueError):
    """Bad input: a file, a matrix, a label column or a parameter that cannot be used.

    Parameters
    ----------
    problem
        What is wrong, in one sentence.
    fix
        What the user can do about it.
    source
        The file or object the problem was found in, when there is one.
    """

    def __init__(self, problem: str, *, fix: str | None = None, source: str | None = None):
        self.problem = problem
        self.fix = fix
        self.source = source
        where = f"{source}: " if source else ""
        hint = f" Fix: {fix}" if fix else ""
        super().__init__(f"{where}{problem}{hint}")


class MissingDependency(InputError, ImportError):
    """An optional package is not installed; the message gives the install command."""


class TrainingError(ScfillError, RuntimeError):
    """Training could not go on (for example a non-finite loss)."""


class NotFittedError(InputError):
    """A model was asked to predict or be saved before it was fitted (or loaded)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) under the command line: raised like Ctrl-C's KeyboardInterrupt
    so that cleanup runs, and carrying the signal number."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")
