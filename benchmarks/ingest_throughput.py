"""Ingest throughput at a demo scale: rows per second and peak memory of ingestion alone.

    python benchmarks/ingest_throughput.py [--scale kaltim] [--period 2025-03]

Generates the demo submissions once (cached under benchmarks/cache/), copies them into
a fresh SATUDATA_HOME and times `Ingestor.run()`. Prints a JSON line and writes it to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="kaltim", choices=["bontang", "kaltim"])
    parser.add_argument("--period", default="2025-03")
    args = parser.parse_args()
    os.environ.setdefault("SATUDATA_PSEUDONYM_KEY", "benchmark-key")
    from orchestration.demo import write_demo
    from orchestration.ingest.pipeline import Ingestor
    from orchestration.settings import Settings

    cache = HERE / "cache" / f"{args.scale}-{args.period}"
    if not cache.exists():
        started = time.perf_counter()
        write_demo(cache.with_suffix(".partial"), args.scale, args.period)
        cache.with_suffix(".partial").rename(cache)
        print(f"generated demo data in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=HERE / "cache") as tmp:
        settings = Settings(Path(tmp)).ensure()
        shutil.copytree(cache, settings.landing, dirs_exist_ok=True)
        started = time.perf_counter()
        outcomes = Ingestor(settings).run()
        seconds = time.perf_counter() - started
    rows = sum(c.get("rows", 0) for o in outcomes for c in o.counts.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "scale": args.scale,
        "submissions": len(outcomes),
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mib": round(peak_mib),
    }
    print(json.dumps(result))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest_{args.scale}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
