"""User errors and the one way every command line tool reports them.

A *user error* is one the user fixes from the message alone (a bad row, a missing file, a wrong
option): the tools print ``<prog>: error: <message>`` and exit with status 2 instead of a
20-line traceback. ``--verbose`` (or ``EG_TRAIN_VERBOSE=1``) shows the traceback as well.
Anything else (a bug) still raises with its traceback.

    def main(argv=None):
        return run_main(lambda args: _real_main(args), "eg-tool", argv, user_errors=(MyError,))
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Iterable, Sequence

VERBOSE_FLAG = "--verbose"
EXIT_USER_ERROR = 2


class UserError(Exception):
    """Base of the errors a user fixes from the message: reported in one line by :func:`run_main`."""


class ConfigError(UserError, ValueError):
    """An option has a value outside what it accepts (the message names the option and the choices)."""


# Built-in exceptions that are user errors when they reach a tool's main (a path the user gave).
BUILTIN_USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def split_verbose(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Remove ``--verbose`` from ``argv`` (every tool accepts it): returns (the rest, whether it was there)."""
    rest = [a for a in argv if a != VERBOSE_FLAG]
    verbose = len(rest) != len(argv) or os.environ.get("EG_TRAIN_VERBOSE", "").strip() not in ("", "0")
    return rest, verbose


def find_user_error(err: BaseException, user_errors: Iterable[type[BaseException]] = ()) -> BaseException | None:
    """The first user error in ``err``'s chain (``raise ... from`` / during handling), or None.

    Libraries (Lightning, jsonargparse, datasets) sometimes wrap what our code raised; the
    original error carries the useful message.
    """
    kinds = (UserError, *BUILTIN_USER_ERRORS, *user_errors)
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, kinds):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def run_main(
    fn: Callable[[list[str]], int | None],
    prog: str,
    argv: Sequence[str] | None = None,
    user_errors: Iterable[type[BaseException]] | Callable[[], Iterable[type[BaseException]]] = (),
) -> int:
    """Run ``fn(argv without --verbose)``; a user error prints one line and returns 2.

    ``argv`` None reads ``sys.argv[1:]``. ``user_errors`` adds a tool's own error types to
    :class:`UserError` and the built-in file errors; a callable is asked only when something was
    raised (so a tool need not import its stages up front). Returns ``fn``'s exit status (None
    counts as 0); with ``--verbose`` the traceback of a user error is printed before the message.
    """
    args, verbose = split_verbose(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(fn(args) or 0)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        kinds = tuple(user_errors() if callable(user_errors) else user_errors)
        found = find_user_error(err, kinds)
        if found is None:
            raise
        if verbose:
            traceback.print_exception(err, file=sys.stderr)
        message = str(found) or type(found).__name__
        if isinstance(found, BUILTIN_USER_ERRORS) and getattr(found, "filename", None) and str(found.filename) not in message:
            message = f"{found.filename}: {message}"
        hint = "" if verbose else f" (run with {VERBOSE_FLAG} for the traceback)"
        print(f"{prog}: error: {message}{hint}", file=sys.stderr)
        return EXIT_USER_ERROR
