"""The `rtsync` command: listen to a vendor, poll for cron, run a demo, serve a local server, publish to it.

Each vendor has a module here, `rtsync/cli/<name>.py`, with:

- `HELP: str` — one line for `rtsync listen --help`;
- `SECRETS: dict` — the options (argparse dests) and variables holding its credentials,
  masked in anything the command prints;
- `add_arguments(parser, polling=False)` — its options for `listen` (and for `poll`
  when the vendor offers `poll(args, output) -> int`);
- `make_client(args) -> rtsync.Client` — the configured client;
- optionally `session(client, args)` — a context manager around `listen`'s run that sets up
  what it needs (Dialpad: a websocket and subscriptions) and removes it on exit;
- `demo(run)` — start its local server (loaded through `demo.local_servers`, the
  only door to `rtsync.testing`), print what a client receives, finish within
  `run.duration` seconds or raise `DemoFailed`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from types import FrameType, ModuleType
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence

from ..checkpoint import FileCheckpoint
from ..errors import AuthenticationError, ConfigurationError, RtsyncError
from ..redact import redact
from . import dashly, dialpad, doshii, fleet, publish, quickmeet, serve, voxsig
from .demo import Demo, DemoFailed, TestingMissing, local_servers
from .output import Output, OutputClosed, Status, event_json

__all__ = ["event_json", "main"]

VENDORS: Dict[str, ModuleType] = {
    "dashly": dashly, "voxsig": voxsig, "quickmeet": quickmeet, "dialpad": dialpad, "doshii": doshii,
}

OK, FAILED, USAGE, AUTHENTICATION, CONFIGURATION, NO_TESTING_EXTRA = 0, 1, 2, 3, 4, 5

EPILOG = """\
exit status:
  0    ok (also when the reader of the output goes away, as with | head; and
       rtsync serve stopped by Ctrl-C or SIGTERM, its normal end)
  1    runtime failure: the network gave up, the retry budget ran out, the demo could not finish,
       rtsync publish found no server
  2    usage error
  3    authentication refused (rtsync.AuthenticationError)
  4    configuration error (rtsync.ConfigurationError): missing credential, bad option, bad checkpoint,
       an event rtsync publish could not send, a port rtsync serve could not take
  5    rtsync demo or serve without the testing extra: pip install 'rtsync[testing]'
  130  interrupted by Ctrl-C (SIGINT), 143 by SIGTERM, 129 by SIGHUP: after a clean stop
       (connections closed, the --checkpoint file saved up to the last printed event)

Events print as one JSON object per line on stdout. Errors print once, as one line on
stderr; an error that ends the command is not repeated as a JSON line. Status lines
(connected, reconnecting, what a demo is doing) go to stderr; --quiet drops them.
Credentials are best passed in the RTSYNC_* variables: command lines are visible to
other users.
"""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="rtsync", epilog=EPILOG,
                     description="Listen to a vendor's real-time API, poll it for cron, run a demo "
                                 "against a bundled local server, or serve a local server and publish "
                                 "events to it.")
    parser.add_argument("--version", action="version", version=f"rtsync {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="no status lines on stderr (errors still print)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (rtsync COMMAND --help for its options)")

    listen = sub.add_parser("listen", help="print one JSON object per event until Ctrl-C",
                            description="Print one JSON object per event until Ctrl-C or SIGTERM.",
                            epilog=EPILOG)
    listen_vendors = listen.add_subparsers(dest="vendor", required=True, metavar="VENDOR",
                                         help="whose API (rtsync listen VENDOR --help for its options)")
    for name, module in VENDORS.items():
        p = listen_vendors.add_parser(name, help=module.HELP, description=module.HELP, epilog=EPILOG)
        module.add_arguments(p)
        p.add_argument("--event", action="append", default=None, metavar="PATTERN",
                       help="only print events matching this glob on name or channel "
                            "(repeatable; default: all, rtsync.* lifecycle events included)")
        _quiet(p)

    poll = sub.add_parser("poll", help="one poll for cron jobs: print new events and exit",
                          description="One poll for cron jobs: print the events published since "
                                      "the last run and exit.", epilog=EPILOG)
    poll_vendors = poll.add_subparsers(dest="vendor", required=True, metavar="VENDOR",
                                         help="whose API (rtsync poll VENDOR --help for its options)")
    for name, module in VENDORS.items():
        if hasattr(module, "poll"):
            p = poll_vendors.add_parser(name, help=module.HELP, description=module.HELP, epilog=EPILOG)
            module.add_arguments(p, polling=True)
            _quiet(p)

    demo = sub.add_parser("demo", help="run a client against the bundled local server; exits by itself",
                          description="Run a client against a local server (needs the testing extra: "
                                      "pip install 'rtsync[testing]') and print what it receives.",
                          epilog=EPILOG)
    demo.add_argument("vendor", nargs="?", default="dashly", choices=list(VENDORS),
                      help="which vendor's local server and client to run (default: dashly)")
    demo.add_argument("--duration", type=_positive, default=10.0,
                      help="seconds at most to run (default 10)")
    _quiet(demo)
    serve.add_parser(sub, EPILOG)
    publish.add_parser(sub, EPILOG)
    fleet.add_parser(sub, EPILOG)
    return parser


def _quiet(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the subcommand it sets the flag; left out, it keeps the top-level value.
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no status lines on stderr (errors still print)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Never echo values: a mistyped --token option would otherwise print the token that follows it.
        shown = [a.split("=", 1)[0] for a in extra if a.startswith("-")]
        hidden = len(extra) - len(shown)
        parser.error("unrecognized arguments: " + " ".join(shown)
                     + (f"{' and ' if shown else ''}{hidden} value(s) (not shown)" if hidden else ""))
    return args


def _secrets(args: argparse.Namespace) -> List[str]:
    module = VENDORS.get(getattr(args, "vendor", None) or "")
    found: List[str] = []
    for dest, env in getattr(module, "SECRETS", {}).items():
        found += [v for v in (getattr(args, dest, None), os.environ.get(env)) if v]
    return found


@contextlib.contextmanager
def _logging(verbose: int) -> Iterator[None]:
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
        yield
        return
    # The command reports errors itself, once; without -v the library's warnings would repeat them.
    # Only while the command runs: main() may be called in-process, whose logging is not ours.
    quiet = logging.NullHandler()
    logger = logging.getLogger("rtsync")
    logger.addHandler(quiet)
    try:
        yield
    finally:
        logger.removeHandler(quiet)


@contextlib.contextmanager
def _signals() -> Iterator[List[int]]:
    """SIGTERM and SIGHUP take Ctrl-C's path (a clean stop); the library itself installs no handler.

    Yields the list of signals caught; a second one while stopping interrupts the stop itself.
    """
    caught: List[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def interrupt(signum: int, frame: Optional[FrameType]) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, interrupt) for s in wanted}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _listen(module: ModuleType, args: argparse.Namespace, output: Output) -> None:
    client = module.make_client(args)
    for pattern in args.event or ["*"]:
        client.on(pattern, output)
    if not args.quiet:
        client.on("rtsync.*", Status(sys.stderr))
    output.on_close(client.stop)  # from the printing callback: stops the link, ends the dispatcher
    # A vendor's `session(client, args)` sets up what the run needs and removes it on the way out.
    session = getattr(module, "session", None)
    with session(client, args) if session is not None else contextlib.nullcontext():
        try:
            client.run_forever()  # returns after Ctrl-C (our signals included) or a stop, raises a fatal error
        except KeyboardInterrupt:  # a signal before run_forever's own handling began
            client.stop()
            raise


def _run(args: argparse.Namespace, output: Output) -> int:
    if args.command == "fleet":
        return fleet.run(args, output.stream)
    module = VENDORS[args.vendor]
    if args.command == "serve":
        serve.serve(args, output.stream)
        return OK
    if args.command == "publish":
        answer = publish.publish(args)
        if not args.quiet:
            print(answer, file=output.stream, flush=True)
        return OK
    if args.command == "demo":
        local_servers(args.vendor)  # imported (aiohttp and all) before the clock of --duration starts
        run = Demo(output, args.duration, args.vendor, quiet=args.quiet)
        module.demo(run)
        run.done()
        return OK
    if args.command == "poll":
        return int(module.poll(args, output))
    _listen(module, args, output)
    return OK


def main(argv: Optional[Sequence[str]] = None, out: Optional[IO[str]] = None) -> int:
    """Run the command; returns the exit status (see `rtsync --help`)."""
    try:
        args = _parse(_parser(), argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else USAGE
    with _logging(args.verbose):
        return _main(args, out)


def _main(args: argparse.Namespace, out: Optional[IO[str]]) -> int:
    checkpoint = getattr(args, "checkpoint", None)
    output = Output(sys.stdout if out is None else out,
                    FileCheckpoint(checkpoint) if checkpoint and args.command != "demo" else None)
    secrets = _secrets(args)
    code = OK
    try:
        with _signals() as caught:
            try:
                code = _run(args, output)
            except KeyboardInterrupt:  # arrived outside run_forever (connecting, demo, poll)
                caught.append(signal.SIGINT)
    except OutputClosed:
        pass
    except TestingMissing as exc:
        return _fail(str(exc), NO_TESTING_EXTRA, secrets)
    except DemoFailed as exc:
        return _fail(str(exc), FAILED, secrets)
    except RtsyncError as exc:  # our messages carry no secrets; _fail masks argv's anyway
        code = AUTHENTICATION if isinstance(exc, AuthenticationError) else (
            CONFIGURATION if isinstance(exc, ConfigurationError) else FAILED)
        return _fail(f"rtsync: {type(exc).__name__}: {exc}", code, secrets)
    except OSError as exc:  # e.g. stdout or a checkpoint's disk failing: say so in one line
        return _fail(f"rtsync: {exc}", FAILED, secrets)
    finally:
        output.restore()
    if caught and args.command != "serve":  # stopping is how a server's run ends, not an interruption
        return 128 + caught[0]
    return OK if output.closed.is_set() else code


def _fail(message: str, code: int, secrets: Sequence[str]) -> int:
    line = redact(" ".join(message.split()), secrets)
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass
    return code
