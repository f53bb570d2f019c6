"""The ``vadx`` command.

Every command reports bad input as one ``error: …`` line on stderr and exits with status 2;
nothing prints a traceback from inside a library.

The commands live by group — :mod:`~vadx.cli.models`, :mod:`~vadx.cli.training`,
:mod:`~vadx.cli.detection`, :mod:`~vadx.cli.live`, :mod:`~vadx.cli.explanation`,
:mod:`~vadx.cli.data`, :mod:`~vadx.cli.demo` — and hold only the reading of their arguments
and the printing of what the library did; what several share is in :mod:`vadx.cli.common`
(a batch's run in :mod:`vadx.cli.batches`), how failures, signals and warnings become lines in
:mod:`vadx.cli.boundary`. Here: the ``vadx`` app, its commands registered in the order
``vadx --help`` lists them, and :func:`main`, the entry point.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from typing import Annotated

import typer

from vadx._version import __version__
from vadx.cli import data, demo, detection, explanation, live, models, normal, training
from vadx.cli.boundary import (
    Stopped,
    empty_path,
    os_error_line,
    signals_stop_the_command,
    warnings_as_lines,
)
from vadx.cli.common import console, err_console, say
from vadx.errors import VadxError
from vadx.files import release_claims

try:  # typer ≥ 0.29 carries its own click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # earlier typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError

__all__ = ["Stopped", "app", "main", "os_error_line"]

app = typer.Typer(
    name="vadx",
    help="Detect anomalies in video with a CNN+RNN and explain every decision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        import torch

        console.print(f"vadx {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Detect anomalies in video with a CNN+RNN and explain every decision."""


#: every command, in the order ``vadx --help`` lists them
COMMANDS = {
    "info": models.info,
    "new-model": models.new_model,
    "import-keras": models.import_keras_command,
    "export": models.export_command,
    "backbones": models.backbones,
    "train": training.train_command,
    "evaluate": training.evaluate_command,
    "calibrate": training.calibrate_command,
    "choose-layer": training.choose_layer_command,
    "calibrate-trust": training.calibrate_trust_command,
    "learn-normal": normal.learn_normal_command,
    "update-normal": normal.update_normal_command,
    "detect": detection.detect_command,
    "watch": live.watch_command,
    "serve": live.serve_command,
    "explain": explanation.explain_command,
    "compare": explanation.compare_command,
    "xai-eval": explanation.xai_eval_command,
    "synth": data.synth,
    "import-boxes": data.import_boxes_command,
    "probe": data.probe,
    "demo": demo.demo,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


#: the library's settings that are arguments, not options, on the command line
ARGUMENTS = {"video": "VIDEO", "data": "DATA", "model": "MODEL"}


def option_name(field: str) -> str:
    """How the command line names a library setting: ``cache_features`` → ``--cache-features``."""
    return ARGUMENTS.get(field) or "--" + field.replace("_", "-")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vadx`` console script, and the one place failures become exit
    statuses: a failure vadx expects (its own errors, an OS error on a file) is one
    ``error:`` line and status 2; SIGINT/SIGTERM stop the command, its unfinished outputs
    removed, with status 128 + the signal; anything else is a bug: its traceback, a line
    asking to report it, status 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    with signals_stop_the_command(), warnings_as_lines():
        try:
            command = typer.main.get_command(app)
            empty = empty_path(command, args)
            if empty is not None:
                raise VadxError(f"{empty} is empty: give a path")
            status = command.main(args=args, prog_name="vadx", standalone_mode=False)
        except NoArgsIsHelpError as err:  # `vadx` alone: the help
            err.show()
            sys.exit(err.exit_code)
        except ClickException as err:  # a bad option or argument, as the parser sees it
            where = err.ctx.command_path if getattr(err, "ctx", None) else "vadx"
            say("error: ", "bold red", f"{err.format_message()} (see {where} --help)")
            sys.exit(2)
        except VadxError as err:
            say("error: ", "bold red", err.worded(option_name))
            sys.exit(2)
        except BrokenPipeError:  # `vadx … | head`: the reader has what it wanted
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as err:
            say("error: ", "bold red", os_error_line(err))
            sys.exit(2)
        except Stopped as stop:
            name = signal.Signals(stop.signum).name
            err_console.print(f"stopped by {name}; unfinished outputs were removed")
            sys.exit(128 + stop.signum)
        except Exception:
            traceback.print_exc()
            say(
                "error: ",
                "bold red",
                f"unexpected failure in vadx {__version__}, a bug: "
                "please report it with the traceback above",
            )
            sys.exit(1)
        finally:
            release_claims()
        if isinstance(status, int) and status:  # --help and the like: click's own status
            sys.exit(status)
