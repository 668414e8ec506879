"""Results of a bench run: results.json, one PNG per scenario, and a markdown summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np

from bench.scenarios import Result


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def plot(result: Result, path: Path) -> bool:
    """Latency histogram and CDF, and throughput per second; False if nothing to plot."""
    latencies = {k: v for k, v in result.latency_ms.items() if len(v)}
    series = {k: v for k, v in result.events_at.items() if len(v)}
    if not latencies and not series:
        return False
    figure, axes = plt.subplots(1, 3, figsize=(11, 2.9), dpi=72)
    for label, values in latencies.items():
        values = np.sort(np.asarray(values, dtype=float))
        top = np.percentile(values, 99.9)
        axes[0].hist(values[values <= top], bins=60, alpha=0.6, label=label)
        shown = values[values <= top]
        axes[1].plot(shown, np.arange(1, shown.size + 1) / values.size, label=label)
    axes[0].set(title="latency histogram (≤ p99.9)", xlabel="ms", ylabel="count")
    axes[1].set(title="latency CDF (≤ p99.9)", xlabel="ms", ylabel="fraction")
    if latencies:
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=7)
    for label, times in series.items():
        times = np.asarray(times, dtype=float)
        start = times.min()
        bins = np.arange(0, max(1.0, times.max() - start) + 1.0, 1.0)
        counts, edges = np.histogram(times - start, bins=bins)
        axes[2].step(edges[:-1], counts, where="post", label=label)
    axes[2].set(title="throughput", xlabel="s", ylabel="per second")
    axes[2].set_ylim(bottom=0)
    axes[2].grid(alpha=0.3)
    if series:
        axes[2].legend(fontsize=7)
    figure.suptitle(result.name, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=72)
    plt.close(figure)
    return True


def _figure_rows(figures: dict[str, Any]) -> list[str]:
    rows = []
    for key, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
        rows.append(f"| {key} | {value} |")
    return rows


def summary(
    results: list[Result], refs: dict[str, Any], meta: dict[str, Any], image_dir: str
) -> str:
    lines = [
        "# Benchmark summary",
        "",
        f"Run {meta['timestamp']} ({'quick' if meta['quick'] else 'full size'}), "
        f"{meta['instances']} daphne instance(s), 1 Celery worker "
        f"(concurrency {meta.get('worker_concurrency', 8)}) and beat, "
        "throwaway PostgreSQL and Redis from `scripts/stack.py test`; PostgreSQL "
        + (
            "with its durable defaults (every commit waits for its WAL flush)."
            if meta.get("postgres_durable", False)
            else "**with fsync and synchronous_commit off (`--fast-unsafe`: not durable)**."
        ),
        "",
        f"Machine: {meta['cpus']} cores, shared by the server processes, PostgreSQL, Redis "
        "**and the load generator** (separate Python processes on the same cores), so every "
        f"figure is a lower bound for a dedicated server. RLIMIT_NOFILE: {meta['nofile']}.",
        "",
        "## Goals",
        "",
        "| scenario | goal | measured | |",
        "|---|---|---|---|",
    ]
    for result in results:
        for goal in result.goals:
            mark = "PASS" if goal["pass"] else "MISS"
            lines.append(f"| {result.name} | {goal['goal']} | {goal['value']} | {mark} |")
    lines += [
        "",
        "## Reference ceilings (same run, same servers)",
        "",
        "| reference | figures |",
        "|---|---|",
    ]
    hot_row = refs.get("hot_row", {})
    if hot_row:
        lines.append(
            f"| PostgreSQL hot-row `UPDATE … version = version + 1`, {hot_row['clients']} "
            f"clients autocommit, prepared, {hot_row['seconds']:g} s | "
            f"{hot_row['updates_per_s']} updates/s |"
        )
    redis = refs.get("redis", {})
    if redis:
        lines.append(
            f"| Redis `PUBLISH` (redis-benchmark, 50 clients, 200-byte message) | "
            f"{redis.get('publish_per_s_P1')}/s unpipelined, "
            f"{redis.get('publish_per_s_P16')}/s pipelined x16 |"
        )
    for result in results:
        lines += ["", f"## {result.name}", "", "| figure | value |", "|---|---|"]
        lines += _figure_rows(result.figures)
        for note in result.notes:
            lines += ["", f"Note: {note}"]
        if result.plotted:
            lines += ["", f"![{result.name}]({image_dir}/{result.name}.png)"]
    return "\n".join(lines) + "\n"


def write(results: list[Result], refs: dict[str, Any], meta: dict[str, Any], out_dir: Path) -> Path:
    """Everything into out_dir; returns the summary's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in results:
        result.plotted = plot(result, out_dir / f"{result.name}.png")
    data = {
        "meta": meta,
        "references": refs,
        "scenarios": {
            r.name: {"figures": r.figures, "goals": r.goals, "notes": r.notes} for r in results
        },
    }
    (out_dir / "results.json").write_text(json.dumps(_plain(data), indent=2, default=str))
    path = out_dir / "summary.md"
    path.write_text(summary(results, refs, meta, "."))
    return path


def publish(
    results: list[Result], refs: dict[str, Any], meta: dict[str, Any], out_dir: Path, docs_dir: Path
) -> Path:
    """docs/performance.md and docs/performance/*.png from this run."""
    images = docs_dir / "performance"
    images.mkdir(parents=True, exist_ok=True)
    for result in results:
        if result.plotted:
            shutil.copyfile(out_dir / f"{result.name}.png", images / f"{result.name}.png")
    path = docs_dir / "performance.md"
    text = summary(results, refs, meta, "performance")
    intro = (
        "How to run: `make bench` (every scenario, full size) or `make bench-<scenario>`; "
        "`python -m bench <scenario> --quick` tries one in about a minute. Results go to "
        "`bench-results/<timestamp>/` (results.json, summary.md, plots). What was changed "
        "for speed, with before/after figures, and what was tried and dropped: "
        "[performance-log.md](performance-log.md).\n\n"
    )
    path.write_text(_with_intro(text, intro))
    return path


def _with_intro(text: str, intro: str) -> str:
    head, _, rest = text.partition("\n\n")
    return f"{head}\n\n{intro}{rest}"
