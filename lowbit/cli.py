"""The `lowbit` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from ._version import __version__
from .costmodel import estimate
from .formats import AnyFormat, FloatFormat, IntFormat, ScaledFormat, catalog, get_format
from .lazy import dashboard_package
from .study import StudyError, load_study, pareto_front, run_study
from .study.progress import Progress
from .study.store import BITS_PER_ELEMENT, Better, get_metric

# Exit statuses (README "Bad input"): 2 a bad argument or study, 3 some points failed (their rows are in
# the table), 130 Ctrl-C, 141 the reader of the output went away (`| head`).
EXIT_FAILED_POINTS = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
RUN_EXIT_CODES = """exit status:
  0    every point computed (points whose GEMM outputs overflowed to Inf/NaN are listed, status ok)
  2    a bad argument or study file: nothing ran
  3    some points failed: the table was written, their rows have status 'failed' and the error
  130  interrupted (Ctrl-C); finished points stay cached, and a re-run resumes
  141  the output's reader went away (a pipe into head)"""

# Each command's --help ends with examples (tests/test_cli.py runs the cheap ones).
EXAMPLES = {
    "lowbit": """examples:
  lowbit formats                            the catalog of formats, 100 columns wide
  lowbit cost mxfp4 nvfp4 --lanes 16        area and energy of an mxfp4 x nvfp4 dot-product unit
  lowbit run studies/quickstart.yaml -o results
  lowbit dashboard results                  explore the table in a browser
  lowbit COMMAND --help                     each command's options and examples""",
    "formats": """examples:
  lowbit formats                            the whole catalog, 100 columns wide
  lowbit formats mxfp4 e3m2 binary8p3se     named formats and specs
  lowbit formats --wide float8_e4m3fn       every column: code bits, min subnormal, full semantics""",
    "cost": """examples:
  lowbit cost mxfp4 nvfp4                   fp32 accumulator, 32 lanes, 7nm
  lowbit cost float8_e4m3fn float8_e4m3fn --accumulator fp16 --node 16nm --lanes 16""",
    "bench": """examples:
  lowbit bench                              every benchmark (minutes)
  lowbit bench matmul --extra --size 64 --repeat 1""",
    "run": """examples:
  lowbit run studies/quickstart.yaml -o results
  lowbit run study.yaml --workers 2 --no-progress      quiet but for the summary and the fronts
  lowbit run study.yaml --progress log > run.log 2>&1  one line per tenth of the points, or 10 s""",
    "dashboard": """examples:
  lowbit dashboard results                  http://127.0.0.1:8050/
  lowbit dashboard results --port 8060 --host 0.0.0.0 --allow-host lab-box""",
}

# What `lowbit run` prints: each workload's front of this accuracy against this cost.
FRONT_METRIC = get_metric("qsnr_db")
FRONT_COST = BITS_PER_ELEMENT


def _fmt_number(v: float) -> str:
    return f"{v:.6g}"


def _bits_per_element(spec: AnyFormat) -> str:
    """The spec's storage per element; a per-channel or per-tensor scale's share depends on the
    tensor's shape, which a catalog has not got."""
    if isinstance(spec, ScaledFormat) and not spec.block:
        return f"{spec.bits}+scale"
    return f"{spec.bits_per_element():g}"


def _row(name: str, spec: AnyFormat) -> tuple[str, ...]:
    if isinstance(spec, (FloatFormat, IntFormat)):
        ranges = (_fmt_number(spec.max), _fmt_number(spec.min_normal), _fmt_number(spec.min_subnormal))
        return (name, str(spec.bits), *ranges, _bits_per_element(spec), spec.describe())
    # Codebook and block-scaled formats: the element's largest magnitude; the scale sets the range.
    element = spec.element if isinstance(spec, ScaledFormat) else spec
    return (name, str(spec.bits), _fmt_number(element.max), "-", "-", _bits_per_element(spec), spec.describe())


HEADER = ("name", "bits", "max", "min normal", "min subnormal", "bits/elem", "semantics")
NARROW = ("name", "bits/elem", "max", "min normal", "semantics")  # code bits and min subnormal: --wide
NARROW_COLUMNS = 100  # characters per line of the narrow table
NAME_CHARS = 24  # a name's cell in the narrow table (the catalog's longest is 21)


def format_table(names: list[str] | None = None, *, wide: bool = False) -> str:
    """A plain-text table of formats: range and storage cost. Narrow (the default): at most
    NARROW_COLUMNS characters a line, the semantics cut to fit; wide: every column in full."""
    full = [_row(name, get_format(name)) for name in names or list(catalog)]
    if wide:
        return _aligned([HEADER, *full])
    keep = [HEADER.index(c) for c in NARROW]
    rows = [NARROW, *([row[i] for i in keep] for row in full)]
    rows = [[_clip(row[0], NAME_CHARS), *row[1:]] for row in rows]
    fixed = sum(max(len(r[i]) for r in rows) + 2 for i in range(len(NARROW) - 1))
    room = max(NARROW_COLUMNS - fixed, len("semantics"))
    return _aligned([[*row[:-1], _clip(row[-1], room)] for row in rows])


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."  # ASCII: any terminal's encoding


def _aligned(rows: list) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_formats(args: argparse.Namespace) -> int:
    print(format_table(args.names or None, wide=args.wide))
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    cap = None if args.partial_sum_bits == 0 else args.partial_sum_bits
    est = estimate(
        args.a_format,
        args.b_format,
        accumulator=args.accumulator,
        lanes=args.lanes,
        node=args.node,
        partial_sum_bits=cap,
        lane_format=args.lane_format,
        reuse=args.reuse,
    )
    print(est.table())
    return 0


def _print_fronts(ok) -> None:
    x, y = FRONT_COST.name, FRONT_METRIC.name
    if x not in ok.columns or y not in ok.columns:
        return
    for workload, group in ok.groupby("workload", sort=False):
        front = pareto_front(group, x, y, minimize_y=FRONT_METRIC.better is Better.LOWER)
        print(f"\nPareto front, {FRONT_METRIC.label} against {FRONT_COST.label}, on {workload}:")
        for _, row in front.iterrows():
            print(f"  {row[x]:7.3f}  {row[y]:7.2f}  {row['format']}")


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        study = load_study(args.study, allow_large=args.allow_large)  # counted and checked before anything runs
        result = run_study(study, out_dir=args.output, workers=args.workers, scheduler=args.scheduler,
                           progress=args.progress, base=Path(args.study).resolve().parent)  # fmt: skip
    except StudyError as err:
        print(f"lowbit: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(result.summary()))  # counts, each failed point, each overflowed one
    _print_fronts(result.table[result.table["status"] == "ok"])
    return EXIT_FAILED_POINTS if result.failed else 0


def _workers(text: str) -> int:
    """--workers: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _progress(text: str) -> Progress:
    """--progress: auto, bar, log or none (argparse names the flag in its error)."""
    try:
        return Progress.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be one of auto, bar, log, none, got {text!r}") from None


def _add_run_parser(sub) -> None:
    run = sub.add_parser("run", help="run a study (YAML) into a Parquet table",
                         epilog=f"{RUN_EXIT_CODES}\n\n{EXAMPLES['run']}",
                         formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run.add_argument("study", help="the study file")
    run.add_argument("-o", "--output", default=None, help="output folder (default: the study's output.dir)")
    run.add_argument("--workers", type=_workers, default=None, help="local processes, >= 1 (default: the study's)")
    run.add_argument("--scheduler", default=None, help="a Dask scheduler address, tcp://host:port")
    run.add_argument("--allow-large", action="store_true",
                     help="run a study of more than 10,000 points (as the study's `allow_large: true`)")  # fmt: skip
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("--progress", type=_progress, default="auto", metavar="{auto,bar,log,none}",
                       help="on stderr: 'bar' (tqdm), 'log' (whole lines, for a file), 'none'; default 'auto', a bar "
                       "on a terminal and log lines elsewhere")  # fmt: skip
    shown.add_argument("--no-progress", dest="progress", action="store_const", const=Progress.NONE,
                       help="no progress output (as --progress none)")  # fmt: skip
    run.set_defaults(func=_cmd_run)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    root = Path(args.results_dir)
    if not root.is_dir():
        print(f"lowbit: error: results_dir: no folder {root}", file=sys.stderr)
        return 2
    dash = dashboard_package()  # imported here: Dash takes seconds to import, which `lowbit run` need not pay
    port = dash.address.parse_port(args.port, "--port")  # a bad port or host is one line from main(), not werkzeug's
    dash.address.allow_list(args.allow_host, port, "--allow-host")  # a bad name's error names the flag
    app = dash.create_app(root, allowed_hosts=dash.address.served_hosts(args.host, args.allow_host, port), port=port)
    dash.address.check_bindable(args.host, port)
    url = f"http://{dash.address.bracketed(args.host)}:{port}/"
    print(f"lowbit dashboard on {url} (results from {root.resolve()}); Ctrl-C stops it", flush=True)
    app.run(host=args.host, port=port, debug=False)
    return 0


def _add_dashboard_parser(sub) -> None:
    dash = sub.add_parser("dashboard", help="serve the accuracy-against-cost explorer over a results folder",
                          **_examples("dashboard"))  # fmt: skip
    dash.add_argument("results_dir", help="folder of Parquet tables (lowbit run's output)")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    dash.add_argument("--port", default="8050", help="TCP port, 1 to 65535 (default: 8050)")
    dash.add_argument("--allow-host", action="append", default=[], metavar="NAME[:PORT]",
                      help="also serve requests whose Host header is NAME (repeatable; default: only the loopback "
                      "names 127.0.0.1, localhost, [::1] and the bound address)")  # fmt: skip
    dash.set_defaults(func=_cmd_dashboard)


BENCHMARKS = ("elements", "blocks", "matmul", "dashboard", "cuda", "torch")


def _cmd_bench(args: argparse.Namespace) -> int:
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"lowbit: error: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if not folder.is_dir():
        print(
            f"lowbit: error: no benchmarks/ folder beside the package ({folder}); run from a source checkout",
            file=sys.stderr,
        )
        return 2
    for name in args.names or BENCHMARKS:
        print(f"## bench_{name}.py", flush=True)
        done = subprocess.run([sys.executable, str(folder / f"bench_{name}.py"), *args.extra], check=False)
        if done.returncode:
            return done.returncode
        print(flush=True)
    return 0


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="run the benchmark scripts (benchmarks/) and print their tables",
                           **_examples("bench"))  # fmt: skip
    bench.add_argument("names", nargs="*", help=f"which of {', '.join(BENCHMARKS)} (default: all)")
    bench.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="arguments passed to each script")
    bench.set_defaults(func=_cmd_bench)


def _add_cost_parser(sub) -> None:
    cost = sub.add_parser("cost", help="area and energy of the unit that multiplies two formats", **_examples("cost"))
    cost.add_argument("a_format", help="first operand's format (any catalog name or eXmY / intN)")
    cost.add_argument("b_format", help="second operand's format")
    cost.add_argument("--accumulator", default="fp32", help="fp32 (default), fp16, bf16, fp22, tf32, eXmY or intN")
    cost.add_argument("--node", default="7nm", help="technology node: 45nm, 40nm, 16nm or 7nm (default)")
    cost.add_argument("--lanes", type=int, default=32, help="products summed per cycle (1: a single MAC)")
    cost.add_argument("--partial-sum-bits", type=int, default=24, help="adder-tree width cap in bits (0: none)")
    cost.add_argument("--lane-format", default=None, help="size the lanes for this wider format (lane reuse)")
    cost.add_argument("--reuse", type=int, default=1, help="MACs per decoded codebook value")
    cost.set_defaults(func=_cmd_cost)


def _examples(command: str) -> dict:
    """A parser's epilog of examples, shown as written."""
    return {"epilog": EXAMPLES[command], "formatter_class": argparse.RawDescriptionHelpFormatter}


def _add_formats_parser(sub) -> None:
    fmts = sub.add_parser("formats", help="print the catalog of formats (or the named ones)", **_examples("formats"))
    fmts.add_argument("names", nargs="*", help="format names or eXmY / intN specs (default: the whole catalog)")
    fmts.add_argument("--wide", action="store_true",
                      help="every column (code bits, min subnormal) and the whole semantics")  # fmt: skip
    fmts.set_defaults(func=_cmd_formats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowbit", description="Low-bit number formats: emulation and exploration.",
                                     **_examples("lowbit"))  # fmt: skip
    parser.add_argument("--version", action="version", version=f"lowbit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_formats_parser(sub)
    _add_cost_parser(sub)
    _add_bench_parser(sub)
    _add_run_parser(sub)
    _add_dashboard_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line (the user's file it names, not lowbit's source line)."""
    print(f"lowbit: warning: {message}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush into a closed pipe stays quiet."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class _NoticeHandler(logging.Handler):
    """lowbit's notices (kernel compiles) as `lowbit: ...` lines on stderr, above a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"lowbit: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _notices(show: bool) -> Iterator[None]:
    """lowbit's INFO records on stderr while a command runs: the library logs them, and Python shows
    none unless asked, so importers of lowbit see nothing (README "The two commands")."""
    if not show:
        yield
        return
    logger, handler = logging.getLogger("lowbit"), _NoticeHandler(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # --no-progress quiets the compile notices too
        with warnings.catch_warnings(), _notices(getattr(args, "progress", None) is not Progress.NONE):
            warnings.showwarning = _show_warning  # restored when the block ends
            code = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
            return code
    except (ValueError, TypeError) as err:
        print(f"lowbit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as err:  # a folder that cannot be written, a full disk: the path and the reason
        print(f"lowbit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
