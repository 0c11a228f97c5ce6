#!/usr/bin/env python3
"""Benchmark of incus-api-web against the Incus floor (issue 8).

For N busybox containers (``bench-0`` .. ``bench-<N-1>``, created once and reused between runs)
it starts the service (``app.py``, gunicorn, one gthread worker, threads=32) on a free loopback port with a temporary
database, and times every operation through HTTP next to the raw Incus REST call that fetches the
same data over the unix socket (the floor), in the same run and interleaved with it, because this
machine is noisy. Reports median / p95 / ratio, the service's resident memory, and 16 concurrent
clients calling info and exec. Writes ``bench/results.json`` and the table into README.md
(between ``<!-- bench:start -->`` and ``<!-- bench:end -->``).

    sudo /path/to/venv/bin/python bench/bench.py                 # N = 40 then 200
    sudo /path/to/venv/bin/python bench/bench.py --counts 40 --quick
    sudo /path/to/venv/bin/python bench/bench.py --cleanup       # delete the bench-* containers

Needs root (iptables), a running Incus with the ``busybox`` image (built by image/busybox.sh when
missing) and the project's Python environment. All traffic stays on loopback and the unix socket.

This file is the command line only; the rest is split by what it does: ``floor.py`` (the raw
Incus REST calls and raw NAT rules every ratio is taken against), ``service.py`` (the service
under test and its clients), ``scenarios.py`` (the containers and every measurement) and
``report.py`` (statistics, the table, results.json and README.md).
"""
import argparse
import os
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # floor, service, scenarios, report: plain modules next to this file

from floor import ROOT, Floor, remove_bench_rules  # noqa: E402 - puts the repository root on sys.path
from report import DEFAULT_COUNTS, invocation, load_results, log, save_results, table, write_readme  # noqa: E402
from scenarios import Run, cleanup, ensure_containers, ensure_image  # noqa: E402
from service import Service  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default=DEFAULT_COUNTS, help="container counts, comma separated (default 40,200)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of repetitions")
    parser.add_argument("--rules", type=int, default=5000, help="NAT rules present for the second NAT run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--concurrency-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 5 s of concurrency")
    parser.add_argument("--socket", default=os.environ.get("INCUS_SOCKET", "/var/lib/incus/unix.socket"))
    parser.add_argument("--bridge", default=os.environ.get("INCUS_BRIDGE", "incusbr0"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--stop-after", action="store_true", help="stop the bench containers at the end")
    parser.add_argument("--cleanup", action="store_true", help="delete every bench-* container and exit")
    parser.add_argument("--only", type=lambda text: [step.strip() for step in text.split(",") if step.strip()],
                        default=[], help="only these steps, comma separated (e.g. 'create with a plan,traffic'); "
                                         "with --no-readme, for a look at one change")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale = min(args.scale, 0.4)
        args.concurrency_seconds = min(args.concurrency_seconds, 5)
    return args


def main():
    args = parse_args()
    floor = Floor(args.socket, args.bridge)
    if args.cleanup:
        cleanup(floor)
        remove_bench_rules()
        return
    ensure_image(floor)
    path = Path(args.json)
    results = load_results(path)
    results["meta"] = invocation(args)
    for count in [int(c) for c in args.counts.split(",") if c.strip()]:
        log(f"N = {count}")
        remove_bench_rules()  # a crashed run's leftovers
        addresses = ensure_containers(floor, count)
        service = Service(args.socket, args.bridge).start()
        try:
            run = Run(args, count, floor, service, addresses).run()
        finally:
            service.stop()
            remove_bench_rules()
        run["date"] = results["meta"]["date"]
        results["runs"][str(count)] = run
        print(f"\nN = {count}\n" + table(run) + "\n", flush=True)
        save_results(path, results)
        if not args.no_readme:
            write_readme(results)
    if args.stop_after:
        cleanup(floor, stop_only=True)


if __name__ == "__main__":
    main()
