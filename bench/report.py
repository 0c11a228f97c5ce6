"""What a run reports: summary statistics, the rows, the table, results.json and README.md.

- ``summary``: median / p95 / min / n of a list of milliseconds; ``make_row``: one operation's row
  (service and floor summaries, ratio = service median / floor median, target met or not);
- ``table``: the Markdown table of one run (stdout and README.md);
- ``load_results`` / ``save_results``: ``bench/results.json`` (the runs of every N kept between
  invocations), ``invocation``: the date, the machine and the command of this run (results["meta"]);
- ``write_readme``: the table between ``<!-- bench:start -->`` and ``<!-- bench:end -->``.
"""
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from pylxd import Client

from floor import ROOT

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
DEFAULT_COUNTS = "40,200"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics ------------------------------------------------------------------------------

def summary(samples):
    if not samples:
        return None
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 2),
        "min_ms": round(ordered[0], 2),
        "n": len(ordered),
    }


def ratio(service, floor):
    """Service median over floor median (``None`` with no floor)."""
    return round(service["median_ms"] / floor["median_ms"], 2) if floor else None


def make_row(op, service_samples, floor_samples=None, floor_desc=None, target=None, check=None, note=None):
    """One operation's row; ``check(service_summary, ratio)`` says whether the target is met."""
    service = summary(service_samples)
    floor = summary(floor_samples) if floor_samples else None
    row_ratio = ratio(service, floor)
    met = check(service, row_ratio) if check else None
    row = {"op": op, "service": service, "floor": floor, "floor_call": floor_desc, "ratio": row_ratio,
           "target": target, "met": met}
    if note:
        row["note"] = note
    floor_text = f"floor {floor['median_ms']:.1f}/{floor['p95_ms']:.1f} ms ratio {row_ratio}" if floor else ""
    log(f"  {op}: {service['median_ms']:.1f}/{service['p95_ms']:.1f} ms {floor_text} {'' if met is None else ('met' if met else 'MISSED')}")
    return row


def memory_row(mb):
    """The service's memory at rest (a row of its own: no timings, no floor)."""
    return {"op": "memory (Pss of app.py's processes: master, front, worker; at rest after the runs above)",
            "service": {"mb": round(mb, 1)},
            "target": "<= 80 MB", "met": mb <= 80}


# -- the table -------------------------------------------------------------------------------

def fmt(value):
    return "-" if value is None else f"{value:.1f}"


def table(result):
    lines = ["| operation | service median / p95 (ms) | floor median / p95 (ms) | ratio | target | met |",
             "|---|---:|---:|---:|---|:-:|"]
    for row in result["operations"]:
        service, floor = row["service"], row.get("floor")
        if "mb" in service:
            lines.append(f"| {row['op']} | {service['mb']:.1f} MB (peak {result['rss_peak_mb']:.1f} MB) | | | "
                         f"{row['target']} | {'yes' if row['met'] else '**no**'} |")
            continue
        met = "" if row.get("met") is None else ("yes" if row["met"] else "**no**")
        floor_text = f"{fmt(floor['median_ms'])} / {fmt(floor['p95_ms'])}" if floor else "-"
        ratio_text = f"{row['ratio']:.2f}x" if row.get("ratio") is not None else "-"
        lines.append(f"| {row['op']} | {fmt(service['median_ms'])} / {fmt(service['p95_ms'])} | {floor_text} | "
                     f"{ratio_text} | {row.get('target') or ''} | {met} |")
    conc = result["concurrency"]
    lines.append("")
    for label in ("service", "floor"):
        c = conc[label]
        lat = c["latency"] or {}
        lines.append(f"- {conc['clients']} concurrent clients, info + exec, {conc['seconds']} s, {label}: "
                     f"{c['throughput_rps']} req/s, {c['errors']} errors, median {fmt(lat.get('median_ms'))} ms, "
                     f"p95 {fmt(lat.get('p95_ms'))} ms")
    for row in result["operations"]:
        if row.get("shown_note"):
            lines.append(f"- {row['op']}: {row['shown_note']}")
    return "\n".join(lines)


# -- results.json ----------------------------------------------------------------------------

def machine(socket_path):
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    try:
        incus_version = Client(endpoint=socket_path).host_info["environment"].get("server_version")
    except Exception:  # noqa: BLE001
        incus_version = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "incus": incus_version, "python": platform.python_version()}


def invocation(args):
    """This invocation: when, on what, the command that reproduces it, and its arguments."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(args.socket),
        "command": "sudo .venv/bin/python bench/bench.py" + (f" --counts {args.counts}" if args.counts != DEFAULT_COUNTS else ""),
        "args": {k: v for k, v in vars(args).items() if k not in ("json",)},
    }


def load_results(path):
    """The results file as it stands (the other N's runs are kept), or an empty one."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {"runs": {}}


def save_results(path, results):
    Path(path).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


# -- README.md -------------------------------------------------------------------------------

def render_readme_block(results):
    meta = results["meta"]
    m = meta["machine"]
    out = [
        f"运行 / Run: `{meta['command']}`（需要 root / needs root; `--quick` 更短 / shorter, `--cleanup` 删除 "
        "`bench-*` 容器 / deletes the `bench-*` containers）",
        "",
        f"日期 / Date: {meta['date']} · 机器 / Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"kernel {m['kernel']}, Incus {m['incus']}, Python {m['python']}; 服务 / service: `app.py` (HTTPS front, gunicorn behind: one gthread worker, threads=32).",
        "",
        "底线（floor）= 同一次运行中直接通过 unix socket 调用 Incus REST 获取相同数据的耗时，与服务调用交替测量；"
        "比值 = 服务中位数 / 底线中位数。The floor is the raw Incus REST call over the unix socket for the same "
        "data, measured in the same run, interleaved with the service's calls; ratio = service median / floor "
        "median. Full numbers: `bench/results.json`.",
    ]
    for key in sorted(results["runs"], key=int):
        run = results["runs"][key]
        out += ["", f"**N = {key}** busybox 容器 / containers ({run['instances_on_host']} instances on the host, "
                f"memory idle {run['rss_idle_mb']} MB, after concurrency {run['rss_after_concurrency_mb']} MB)", "",
                table(run)]
    return "\n".join(out)


def write_readme(results, path=ROOT / "README.md"):
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        log("README.md has no bench markers; not updated")
        return
    block = render_readme_block(results)
    path.write_text(text[:start + len(README_START)] + "\n" + block + "\n" + text[end:], encoding="utf-8")
