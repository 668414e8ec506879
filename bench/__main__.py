"""`python -m bench <scenario>|all [--quick] [--publish]`: the issue 6 benchmark.

Re-runs itself under `scripts/stack.py test` (throwaway PostgreSQL and Redis), starts the
application (bench.stack), measures the reference ceilings and the scenarios, and writes
bench-results/<timestamp>/. `--publish` also rewrites docs/performance.md and its plots.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from bench.stack import IN_STACK_MARK, REPO_ROOT, log, raise_fd_limit, run_inside_stack

ORDER = ["hot", "many", "fanout", "idle", "churn", "closing", "reconnect", "client"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*ORDER, "all"])
    parser.add_argument("--quick", action="store_true", help="small counts, about a minute")
    parser.add_argument("--instances", type=int, default=2, help="daphne instances (2)")
    parser.add_argument("--publish", action="store_true", help="rewrite docs/performance.md")
    parser.add_argument("--no-references", action="store_true", help="skip the ceilings")
    parser.add_argument(
        "--fast-unsafe",
        action="store_true",
        help="PostgreSQL without fsync (not durable; figures are labelled so)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from bench import report, scenarios
    from bench.stack import AppStack

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = REPO_ROOT / "bench-results" / stamp
    names = ORDER if args.scenario == "all" else [args.scenario]
    meta = {
        "timestamp": stamp,
        "quick": args.quick,
        "instances": args.instances,
        "worker_concurrency": int(os.environ.get("WORKER_CONCURRENCY", "8")),
        "cpus": os.cpu_count(),
        "nofile": raise_fd_limit(),
        "scenarios": names,
        "postgres_durable": not args.fast_unsafe,
    }
    results = []
    refs: dict[str, Any] = {}
    began = time.monotonic()
    with AppStack(instances=args.instances, log_dir=out_dir / "logs") as stack:
        scenarios.django_setup()
        context = scenarios.Context(stack=stack, quick=args.quick)
        if not args.no_references:
            log("reference: PostgreSQL hot-row update loop")
            refs["hot_row"] = scenarios.reference_hot_row(context)
            log("reference: Redis PUBLISH")
            refs["redis"] = scenarios.reference_redis_publish(context)
            log(f"references: {refs}")
        context.refs = refs
        for name in names:
            started = time.monotonic()
            scenarios.db_statements_reset()
            try:
                result = scenarios.SCENARIOS[name](context)
            except Exception:
                result = scenarios.Result(
                    name, notes=[f"failed:\n```\n{traceback.format_exc()}```"]
                )
                log(f"{name} failed:\n{traceback.format_exc()}")
            result.figures["scenario_seconds"] = round(time.monotonic() - started, 1)
            result.notes.append(
                "Database time by statement (pg_stat_statements):\n"
                + "\n".join(f"- {line}" for line in scenarios.db_statements_top())
            )
            results.append(result)
            marks = ", ".join(
                f"{g['goal']}: {g['value']} {'PASS' if g['pass'] else 'MISS'}" for g in result.goals
            )
            log(f"{name}: {result.figures}" + (f"\n  goals: {marks}" if marks else ""))
        from django.db import connections

        connections.close_all()
    meta["total_seconds"] = round(time.monotonic() - began, 1)
    path = report.write(results, refs, meta, out_dir)
    log(f"results in {out_dir}")
    if args.publish:
        log(f"published {report.publish(results, refs, meta, out_dir, REPO_ROOT / 'docs')}")
    print(path.read_text())
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not os.environ.get(IN_STACK_MARK):
        return run_inside_stack(argv, durable=not args.fast_unsafe)
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
