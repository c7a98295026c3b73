"""The `lowbit` command line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path

from .costmodel import estimate
from .dashboard import create_app
from .dashboard.address import allow_list, bracketed, check_bindable, parse_port, served_hosts
from .formats import AnyFormat, FloatFormat, IntFormat, ScaledFormat, catalog, get_format
from .study import StudyError, load_study, pareto_front, run_study
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


def format_table(names: list[str] | None = None) -> str:
    """A plain-text table of formats: bits, range and storage cost."""
    header = ("name", "bits", "max", "min normal", "min subnormal", "bits/elem", "semantics")
    rows = [header]
    for name in names or list(catalog):
        rows.append(_row(name, get_format(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_formats(args: argparse.Namespace) -> int:
    print(format_table(args.names or None))
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
                           base=Path(args.study).resolve().parent)  # fmt: skip
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


def _add_run_parser(sub) -> None:
    run = sub.add_parser("run", help="run a study (YAML) into a Parquet table", epilog=RUN_EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run.add_argument("study", help="the study file")
    run.add_argument("-o", "--output", default=None, help="output folder (default: the study's output.dir)")
    run.add_argument("--workers", type=_workers, default=None, help="local processes, >= 1 (default: the study's)")
    run.add_argument("--scheduler", default=None, help="a Dask scheduler address, tcp://host:port")
    run.add_argument("--allow-large", action="store_true",
                     help="run a study of more than 10,000 points (as the study's `allow_large: true`)")  # fmt: skip
    run.set_defaults(func=_cmd_run)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    root = Path(args.results_dir)
    if not root.is_dir():
        print(f"lowbit: error: results_dir: no folder {root}", file=sys.stderr)
        return 2
    port = parse_port(args.port, "--port")  # a bad port or host is one line from main(), not werkzeug's exit
    allow_list(args.allow_host, port, "--allow-host")  # a bad name's error names the flag
    app = create_app(root, allowed_hosts=served_hosts(args.host, args.allow_host, port), port=port)
    check_bindable(args.host, port)
    print(
        f"lowbit dashboard on http://{bracketed(args.host)}:{port}/ (results from {root.resolve()}); Ctrl-C stops it",
        flush=True,
    )
    app.run(host=args.host, port=port, debug=False)
    return 0


def _add_dashboard_parser(sub) -> None:
    dash = sub.add_parser("dashboard", help="serve the accuracy-against-cost explorer over a results folder")
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
    bench = sub.add_parser("bench", help="run the benchmark scripts (benchmarks/) and print their tables")
    bench.add_argument("names", nargs="*", help=f"which of {', '.join(BENCHMARKS)} (default: all)")
    bench.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="arguments passed to each script")
    bench.set_defaults(func=_cmd_bench)


def _add_cost_parser(sub) -> None:
    cost = sub.add_parser("cost", help="area and energy of the unit that multiplies two formats")
    cost.add_argument("a_format", help="first operand's format (any catalog name or eXmY / intN)")
    cost.add_argument("b_format", help="second operand's format")
    cost.add_argument("--accumulator", default="fp32", help="fp32 (default), fp16, bf16, fp22, tf32, eXmY or intN")
    cost.add_argument("--node", default="7nm", help="technology node: 45nm, 40nm, 16nm or 7nm (default)")
    cost.add_argument("--lanes", type=int, default=32, help="products summed per cycle (1: a single MAC)")
    cost.add_argument("--partial-sum-bits", type=int, default=24, help="adder-tree width cap in bits (0: none)")
    cost.add_argument("--lane-format", default=None, help="size the lanes for this wider format (lane reuse)")
    cost.add_argument("--reuse", type=int, default=1, help="MACs per decoded codebook value")
    cost.set_defaults(func=_cmd_cost)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowbit", description="Low-bit number formats: emulation and exploration.")
    sub = parser.add_subparsers(dest="command", required=True)
    fmts = sub.add_parser("formats", help="print the catalog of formats (or the named ones)")
    fmts.add_argument("names", nargs="*", help="format names or eXmY / intN specs (default: the whole catalog)")
    fmts.set_defaults(func=_cmd_formats)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
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
