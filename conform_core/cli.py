"""The ``conform`` command line: typer app, error handling and plugin commands.

Commands defined here: ``fit``, ``plugins`` (list and scaffold), ``data info``, and the
root's ``--version``. :func:`run_app` maps every outcome to an exit code (see ``HELP``).
Plugins add their own (``simulate``, ``design``, ``glmsingle``, ``mosaic``, ...) through the
``conform_register_commands(app)`` hook, so this module imports no plugin.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, TypeVar

import typer

from .exceptions import ConformError, Interrupted, ParameterError

__all__ = ["build_app", "flag_table", "main", "parameter_flags", "print_error",
           "render_error", "run_app"]

F = TypeVar("F", bound=Callable[..., Any])

HELP = (
    "conform: design multi-site fMRI vision studies, denoise and model their data, and "
    "compare methods as plugins.\n\nRun `conform COMMAND --help` for each command.\n\n"
    "Exit codes: 0 success; 1 a bug in conform or a plugin (printed with its traceback); "
    "2 a usage error or a user error (bad option, spec, data or file; printed as one message, "
    "set CONFORM_DEBUG=1 to see its traceback too); 3 `conform fit` finished but some cells "
    "failed; 130 interrupted by Ctrl-C (SIGINT), 143 terminated (SIGTERM), with nothing written."
)

#: Exit status of a usage error (click's convention) and of a user error.
_USER_ERROR = 2


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"conform-fmri {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version,
        help="Print the version of conform-fmri and exit.")] = False,
) -> None:
    """Options of the root command (``--version``); the subcommand does the work."""


def build_app(*, with_plugins: bool = True) -> typer.Typer:
    """Build the root typer app, with plugin commands added when ``with_plugins``."""
    from . import cli_commands

    root = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                       rich_markup_mode="rich", pretty_exceptions_enable=False)
    root.callback(help=HELP)(_root)
    cli_commands.add_core_commands(root)
    if with_plugins:
        import warnings

        from .exceptions import ConformWarning
        from .plugins import default_plugin_manager, default_registry, register_commands

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConformWarning)
            errors = list(default_registry().load_errors)
        errors += register_commands(default_plugin_manager(), root)
        for error in errors:
            print_error(str(error), warning=True)
    return root


def _help_as_text(command: Any) -> None:
    """Escape rich markup in the help of ``command`` and its subcommands, in place.

    Commands whose help typer renders as rich markup would swallow bracketed text such as
    ``denoiser[pca].n_components``; escaped, it prints as written.
    """
    from rich.markup import escape

    if getattr(command, "rich_markup_mode", None) == "rich":
        for obj in (command, *getattr(command, "params", ())):
            for attr in ("help", "short_help", "epilog"):
                value = getattr(obj, attr, None)
                if isinstance(value, str):
                    setattr(obj, attr, escape(value))
    commands = getattr(command, "commands", None)
    for sub in commands.values() if isinstance(commands, dict) else ():
        _help_as_text(sub)


def print_error(message: str, *, warning: bool = False) -> None:
    """Print a user-facing error (or warning) on stderr, without traceback.

    The label ("Error:" in red, "Warning:" in yellow) is styled; ``message`` is printed as
    plain text, so bracketed text such as ``[analysis]`` or ``[a-z]`` is never read as rich
    markup.
    """
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    label = "Warning:" if warning else "Error:"
    text = Text.assemble((label, "yellow" if warning else "red"), " ", str(message))
    console.print(text, markup=False, highlight=False)


# --- parameter names as flags ----------------------------------------------------------------

_FLAGS_ATTR = "__conform_flags__"


def flag_table(names: Iterable[str], *, drop_prefix: str = "",
               overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the flag of each library parameter a command sets: ``n_subjects`` -> ``--subjects``.

    Parameters
    ----------
    names : iterable of str
        The Python parameter names the command's options set.
    drop_prefix : str, default=""
        A prefix the flags leave out (``"n_"``: ``n_units`` -> ``--units``).
    overrides : mapping of str to str or None
        Flags that do not follow the rule (``{"list_file": "--list"}``).

    Returns
    -------
    dict of str to str
        Parameter name -> flag (``--`` + the name without the prefix, dashes for underscores).
    """
    table = {name: "--" + name.removeprefix(drop_prefix).replace("_", "-") for name in names}
    table.update(overrides or {})
    return table


def parameter_flags(flags: Mapping[str, str]) -> Callable[[F], F]:
    """Declare, on a command's function, how its options spell the library's parameters.

    This is the command's one table from Python parameter names to flags. Library code
    raises :class:`~conform_core.exceptions.ParameterError` naming the Python parameter;
    when one leaves the decorated command, :func:`run_app` prints it with these flags
    (``The --units option must be ...``, and ``$n_shared`` in its fix as ``--shared``).
    Nothing is parsed or rewritten: the error is structured.

    Parameters
    ----------
    flags : mapping of str to str
        Parameter name -> flag, e.g. ``flag_table(SimulationParams names, drop_prefix="n_")``.

    Returns
    -------
    decorator
        Put it under typer's ``@app.command()`` (the signature and help are kept).
    """
    table = dict(flags)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except ParameterError as exc:
                if not hasattr(exc, _FLAGS_ATTR):  # the innermost command's table wins
                    setattr(exc, _FLAGS_ATTR, table)
                raise

        setattr(wrapper, _FLAGS_ATTR, table)
        return wrapper  # type: ignore[return-value]

    return decorate


def render_error(exc: BaseException) -> str:
    """Return the message of a user error as the command line prints it.

    A structured :class:`~conform_core.exceptions.ParameterError` raised inside a command
    decorated with :func:`parameter_flags` names its parameters by that command's flags;
    any other error prints as ``str(exc)``.
    """
    if isinstance(exc, ParameterError):
        return exc.render(getattr(exc, _FLAGS_ATTR, None))
    return str(exc)


# --- click/typer exceptions, whichever release raised them -----------------------------------

# Older typer releases raise the click package's classes; typer 0.29 vendors click as
# ``typer._click`` with classes of its own (Exit and Abort in ``typer.exceptions``). A plugin
# may also raise standalone click's. Only modules already imported can have raised an
# exception, so they are looked up in sys.modules.
_CLICK_MODULES = ("typer.exceptions", "typer._click.exceptions", "click.exceptions")


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    classes = {getattr(typer, name, None)}
    for module_name in _CLICK_MODULES:
        module = sys.modules.get(module_name)
        classes.add(getattr(module, name, None))
    return tuple(c for c in classes if isinstance(c, type) and issubclass(c, BaseException))


def _is_click(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's (or typer's) ``name`` exception, from any click flavour."""
    if isinstance(exc, _click_classes(name)):
        return True
    # duck typing, for a click or typer module not listed above
    if not any(cls.__name__ == name and cls.__module__.split(".")[0] in ("click", "typer")
               for cls in type(exc).__mro__):
        return False
    if name == "ClickException":
        return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)
    return name != "Exit" or hasattr(exc, "exit_code")


def _exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 0)
    return code if isinstance(code, int) else 1


# --- interrupts -----------------------------------------------------------------------------


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Interrupted` (SIGINT raises KeyboardInterrupt).

    A signal handler can only be installed in the main thread; elsewhere, or when SIGTERM
    is ignored (``nohup``-like launchers), nothing changes.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            current = signal.getsignal(signal.SIGTERM)
            if current is not signal.SIG_IGN:
                previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGTERM, previous)


def _command_path(application: Any, args: Sequence[str]) -> str:
    """``conform fit`` or ``conform plugins new``: the command that ``args`` run."""
    names = ["conform"]
    command = application
    for arg in args:
        if arg.startswith("-"):
            continue
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or arg not in commands:
            break
        names.append(arg)
        command = commands[arg]
    if application is None and args and not args[0].startswith("-"):
        names.append(args[0])
    return " ".join(names)


def _interrupted(exc: BaseException, application: Any, args: Sequence[str]) -> int:
    """Report an interrupt in one line on stderr and return 130 (SIGINT) or 143 (SIGTERM)."""
    signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if os.environ.get("CONFORM_DEBUG") == "1" and exc.__traceback__ is not None:
        traceback.print_exception(exc)
    outcome = getattr(exc, "outcome", None) or "nothing was written"
    with contextlib.suppress(Exception):
        sys.stderr.write(
            f"Interrupted ({name}) during `{_command_path(application, args)}`: {outcome}.\n"
        )
        sys.stderr.flush()
    return 128 + signum


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [
        os.fsdecode(f)
        for f in (exc.filename, exc.filename2)
        if isinstance(f, (str, bytes, os.PathLike))
    ]
    if not files:
        return f"{reason} ({type(exc).__name__}). Set CONFORM_DEBUG=1 for the traceback."
    where = " -> ".join(repr(f) for f in files)
    return (
        f"Cannot access {where}: {reason}. Check the path, its permissions and the free "
        "disk space (set CONFORM_DEBUG=1 for the traceback)."
    )


def run_app(application: Any, args: Sequence[str] | None = None) -> int:
    """Run the command line ``application`` on ``args`` and return the process exit code.

    Parameters
    ----------
    application : click.Command or typer.Typer
        The root command, e.g. ``typer.main.get_command(build_app())``.
    args : sequence of str, optional
        Command-line arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; a command's own ``typer.Exit(code)``; 1 for a bug, printed with its
        traceback; 2 for a usage error (click's message) or a :class:`ConformError` or an
        ``OSError`` (one line, no traceback unless ``CONFORM_DEBUG=1``); 130 on Ctrl-C
        (SIGINT) and 143 on SIGTERM, reported in one line.

    Notes
    -----
    The command is parsed and invoked here rather than through click's ``main``, so the
    outcome does not depend on the click or typer release: click's ``main`` turns Ctrl-C
    into ``Abort`` (click) or a *returned* exit code (typer >= 0.29) and, with
    ``standalone_mode=False``, returns ``typer.Exit``'s code instead of raising it.
    """
    return _run(application, args)[0]


def _run(application: Any, args: Sequence[str] | None) -> tuple[int, bool]:
    """:func:`run_app`, also saying whether the command was interrupted."""
    if isinstance(application, typer.Typer):
        application = typer.main.get_command(application)
    args = list(sys.argv[1:] if args is None else args)
    debug = os.environ.get("CONFORM_DEBUG") == "1"
    try:
        with _terminate_as_exception(), application.make_context("conform", list(args)) as ctx:
            application.invoke(ctx)
    except (KeyboardInterrupt, Interrupted) as exc:
        return _interrupted(exc, application, args), True
    except ConformError as exc:
        if debug:
            traceback.print_exc()
        print_error(render_error(exc))
        return _USER_ERROR, False
    except BrokenPipeError:  # `conform plugins | head`: the reader left; say nothing
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (no flush error at exit)
        return 1, False
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 1, False
        if debug:
            traceback.print_exc()
        print_error(_os_error_message(exc))
        return _USER_ERROR, False
    except EOFError as exc:  # a compressed file that ends early (click calls it "Aborted")
        if debug:
            traceback.print_exc()
        print_error(
            f"A file ended before its end-of-stream marker ({exc}); it is truncated "
            "or still being written. Set CONFORM_DEBUG=1 for the traceback."
        )
        return _USER_ERROR, False
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0), False
        print_error(str(exc.code))
        return 1, False
    except BaseException as exc:  # click's exceptions (any flavour) and genuine bugs
        if _is_click(exc, "Exit"):
            return _exit_code(exc), False
        if _is_click(exc, "Abort"):
            if _caused_by_ctrl_c(exc):
                return _interrupted(KeyboardInterrupt(), application, args), True
            print_error("Aborted.")
            return 1, False
        if _is_click(exc, "ClickException"):
            if debug:
                traceback.print_exc()
            exc.show()  # type: ignore[attr-defined]  # click's own message and usage line
            return _exit_code(exc), False
        if not isinstance(exc, Exception):
            raise
        traceback.print_exc()
        return 1, False
    return 0, False


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``conform`` console script."""
    args = list(sys.argv[1:] if args is None else args)
    application = None
    try:
        with _terminate_as_exception():
            application = typer.main.get_command(build_app())
            _help_as_text(application)
            code, interrupted = _run(application, args)
    except (KeyboardInterrupt, Interrupted) as exc:  # during start-up (plugin loading)
        code, interrupted = _interrupted(exc, application, args), True
    if interrupted:
        # CPython (3.11) remembers a KeyboardInterrupt that went through eval() of a string
        # (namedtuple does that while a module is imported) even once it is caught, and then
        # ends `python -m conform_core` by SIGINT instead of exiting 130. Evaluating a string
        # resets that flag.
        eval("None")  # a constant string
    if interrupted and os.environ.get("CONFORM_DEBUG") != "1":
        # The one line is said. What libraries print while the interpreter shuts down (Dask's
        # atexit hook closing a cluster that was still starting) is noise after an interrupt.
        with contextlib.suppress(OSError):
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (lives until the process ends)
    sys.exit(code)


def __getattr__(name: str) -> Any:  # `app` is built lazily so importing cli loads no plugin
    if name == "app":
        return build_app()
    raise AttributeError(name)
