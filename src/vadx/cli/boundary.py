"""Where failures, signals and warnings meet the command line: SIGINT/SIGTERM raise
:class:`Stopped` in the command, warnings are ``warning: …`` lines, an OS error is one line
that says what to do (:func:`vadx.cli.main` turns each into its exit status)."""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
import warnings

from vadx.cli.common import say


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: the command unwinds (removing what it had half-written)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_stop_the_command():
    """SIGINT and SIGTERM raise :class:`Stopped` in the command, so that every ``finally``
    and staging folder cleans up (Python's default SIGTERM ends the process on the spot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame) -> None:
        raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def warnings_as_lines():
    """Warnings as ``warning: …`` lines on stderr, not as ``file:line: UserWarning: …``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        say("warning: ", "bold yellow", str(message))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


#: what to do about an OS error, by errno
_OS_ADVICE = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENOENT: "check the path",
    errno.EEXIST: "it exists already: choose another path",
}


def os_error_line(err: OSError) -> str:
    """One line for an OS error: the path, what went wrong, what to do."""
    paths = " → ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err) or type(err).__name__
    advice = _OS_ADVICE.get(err.errno) if paths else None
    return (f"{paths}: " if paths else "") + reason + (f"; {advice}" if advice else "")


def empty_path(command, args: list[str]) -> str | None:
    """The option or argument of ``vadx ARGS`` given an empty path (``--out ''``, an unset
    shell variable), which the parser would read as the current folder; None if there is none.
    ``command`` is the ``vadx`` click group."""
    if "" not in args and not any(a.startswith("--") and a.endswith("=") for a in args):
        return None
    sub = getattr(command, "commands", {}).get(args[0]) if args else None
    if sub is None:
        return None

    def is_path(param) -> bool:
        return "Path" in str(getattr(getattr(param, "type_descriptor", None), "annotation", ""))

    options = {o: p for p in sub.params if p.param_type_name == "option" for o in p.opts}
    valued = {o: p for o, p in options.items() if not getattr(p, "is_flag", False)}
    positional: list[str] = []
    rest, index = args[1:], 0
    while index < len(rest):
        token = rest[index]
        name, equals, value = token.partition("=")
        if token.startswith("--") and equals and name in valued:
            if value == "" and is_path(valued[name]):
                return name
        elif token in valued:
            if index + 1 < len(rest) and rest[index + 1] == "" and is_path(valued[token]):
                return token
            index += 1
        elif token == "" or not token.startswith("-"):
            positional.append(token)
        index += 1
    arguments = [p for p in sub.params if p.param_type_name == "argument"]
    for number, param in enumerate(arguments):
        later = len(arguments) - number - 1
        count = max(len(positional) - later, 0) if param.nargs == -1 else 1
        taken, positional = positional[:count], positional[count:]
        if "" in taken and is_path(param):
            return (param.metavar or param.name or "an argument").upper()
    return None
