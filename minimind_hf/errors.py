"""Errors that are the user's to fix, and how every command-line entry point reports them.

    raise UserError(f"{path}: no such file")            # or a subclass: DataError, CheckpointError, ConfigError

    if __name__ == "__main__":
        with user_errors("recipes/sft.py"):
            main(*parse_args(sys.argv[1:]))

Inside `user_errors`, a `UserError` prints ``PROG: error: MESSAGE`` on stderr and exits with status 1, and Ctrl-C
exits with 130 (the shell's code for SIGINT) after one line; any other exception is a bug and keeps its traceback.
"""

import sys
from contextlib import contextmanager

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input the user can fix: a path, option, data record or checkpoint. The message names it and says what to
    do; command-line entry points show only the message."""


class ConfigError(UserError, ValueError):
    """A recipe option or option combination that cannot work (YAML key, command-line flag, value)."""


class CheckpointError(UserError, ValueError):
    """Weights that cannot be read or converted faithfully; the message says why and what to do instead."""


@contextmanager
def user_errors(prog: str):
    """Report a `UserError` raised inside as one line ``prog: error: ...`` and exit 1; Ctrl-C exits 130."""
    try:
        yield
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)
