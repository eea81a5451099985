"""The nightly run at province scale against DuckDB's own floor, in one run (`make bench`).

    python benchmarks/nightly.py [--scales kaltim kaltim2x kaltim10x] [--period 2025-03]

For each scale: generates the demo submissions once (cached in benchmarks/cache/), then
- pipeline: `satudata run` from a fresh SATUDATA_HOME holding them (written to disk before
  the clock starts), timed end to end, with the time of each stage (Dagster step stats) and
  the peak resident memory of the whole process tree (summed over all its processes, sampled
  from /proc); best of two (at kaltim10x, 11.6 M households and 40 M people, one);
- floor: benchmarks/floor.sql in one DuckDB connection on the same files (read and type
  every column, HMAC pseudonyms, fct_poverty / fct_employment / fct_program_coverage at
  every level); best of two, taken in turns with the pipeline's two runs;
- stages: Dagster's step times, dbt's own elapsed time inside its step, and the time outside
  the steps (interpreter start, imports, loading the definitions, the printed summary);
- resubmission (first scale only): one kabupaten sends a new revision; the following run;
- fixed cost (first scale only): the same run on the small `bontang` demo (1 % of the
  rows), best of two: what a nightly run costs whatever its data, so a lower bound of the
  re-submission run;
- a year (`bontang×12`; `--year-scale kaltim` for the province): twelve monthly periods in
  the warehouse, one kabupaten resubmits the last month: the next run with the incremental
  models as every night, and the same with `--full-refresh` (`--only-year`: these rows alone).
Before each run, dbt's parse state is prepared for its fresh SATUDATA_HOME, as `make install`
prepares it for a deployment's (untimed); when the bench ends, for the environment's again.
Prints a table (seconds, ratio to the floor, peak MiB) and writes it under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEY = "benchmark-pseudonym-key"
RESUBMITTING_UNIT = "64.08"
# At ten times Kaltim one floor and one pipeline run, in turns: each takes minutes and its
# home 10 GB, and over minutes the machine's drift averages out.
RUNS = {"kaltim10x": 1}
# DuckDB's memory cap, the same for the floor and the pipeline (SATUDATA_DUCKDB_MEMORY_LIMIT)
MEMORY_LIMIT = "4GB"


def demo_cache(scale: str, period: str) -> Path:
    from orchestration.demo import write_demo

    cache = HERE / "cache" / f"{scale}-{period}"
    if not cache.exists():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        write_demo(partial, scale, period)
        partial.rename(cache)
        print(
            f"generated {scale} demo data in {time.perf_counter() - started:.0f} s", file=sys.stderr
        )
    return cache


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            total = 0
            for pid in self._tree():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak // (1024 * 1024)


def prepare(home: Path | None) -> None:
    """dbt's parse state for this home, as `make install` prepares it for a deployment's home
    (`satudata prepare`): the profile names the home's DuckDB file, and dbt parses the whole
    project again when the profile differs from the one the parse state was written with.
    Without a home: for the environment's SATUDATA_HOME again, as the bench found it."""
    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)
    if home is not None:
        env["SATUDATA_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "orchestration.cli", "prepare"], env=env,
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"satudata prepare failed:\n{done.stderr[-3000:]}")


def run_pipeline(home: Path, *options: str) -> dict:
    env = {**os.environ, "SATUDATA_HOME": str(home), "SATUDATA_PSEUDONYM_KEY": KEY,
           "SATUDATA_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT}  # fmt: skip
    env.pop("DAGSTER_HOME", None)
    prepare(home)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "run", *options],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    memory = TreeMemory(process.pid)
    output = process.communicate()[0]
    seconds = time.perf_counter() - started
    peak = memory.stop()
    if process.returncode != 0:
        raise RuntimeError(f"satudata run failed:\n{output[-3000:]}")
    stages = stage_times(home)
    # outside the steps: interpreter start, imports, loading the definitions, the summary
    steps = sum(v for k, v in stages.items() if not k.startswith("("))
    stages["outside"] = round(seconds - steps, 2)
    return {"seconds": seconds, "peak_mib": peak, "stages": stages}


def stage_times(home: Path) -> dict[str, float]:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    [run] = instance.get_runs(limit=1)
    names = {"raw_submissions": "ingest", "warehouse_models": "dbt", "great_expectations_suites": "checks",
             "publication__published_warehouse": "publish"}  # fmt: skip
    stages = {names.get(s.step_key, s.step_key): round(s.end_time - s.start_time, 2)
              for s in instance.get_run_step_stats(run.run_id)}  # fmt: skip
    # dbt's own elapsed time; the rest of the dbt step is dbt's start-up and Dagster's events
    results = home / "dbt" / "runs" / run.run_id / "run_results.json"
    dbt_own = round(json.loads(results.read_text())["elapsed_time"], 2)
    return {**stages, "(of which dbt's own)": dbt_own}


def floor_inputs(con, landing: Path, work: Path) -> None:
    """Text views over the same files: CSV read by DuckDB (cp1252 transcoded), XLSX by calamine."""
    import pyarrow as pa
    from python_calamine import CalamineWorkbook

    frames = {"keluarga": [], "anggota": [], "bantuan": []}
    for entry in sorted(landing.iterdir()):
        folder = entry
        if entry.suffix == ".zip":
            folder = work / entry.stem
            with zipfile.ZipFile(entry) as archive:
                archive.extractall(folder)
            folder = next(p for p in folder.rglob("manifest.json")).parent
        unit = json.loads((folder / "manifest.json").read_text())["kode_wilayah"]
        for table in frames:
            path = folder / f"{table}.csv"
            if path.exists():
                raw = path.read_bytes()
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    path = work / f"{entry.name}-{table}.csv"
                    path.write_text(raw.decode("cp1252"), encoding="utf-8")
                sql = f"select '{unit}' as unit_code, * from read_csv('{path}', all_varchar=true, normalize_names=true)"
            else:
                [book] = folder.glob("*.xlsx")
                rows = CalamineWorkbook.from_path(str(book)).get_sheet_by_name(table).to_python()
                header = [str(h).strip().lower() for h in rows[0]]
                arrow = pa.table(
                    {
                        h: [None if r[i] == "" else str(r[i]) for r in rows[1:]]
                        for i, h in enumerate(header)
                    }
                )
                view = f"xlsx_{unit.replace('.', '_')}_{table}"
                con.register(view, arrow)
                sql = f"select '{unit}' as unit_code, * from {view}"
            frames[table].append(sql)
    for table, view in (("keluarga", "hh_src"), ("anggota", "mem_src"), ("bantuan", "rec_src")):
        con.execute(
            f"create or replace view {view} as " + " union all by name ".join(frames[table])
        )


def run_floor(landing: Path, period: str) -> dict:
    import duckdb

    from orchestration.ingest.load import Pseudonymiser

    year, month = (int(x) for x in period.split("-"))
    period_end = (dt.date(year, month, 1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(
        days=1
    )
    with tempfile.TemporaryDirectory(dir=HERE / "cache") as tmp:
        started = time.perf_counter()
        con = duckdb.connect()
        con.execute("set enable_progress_bar = false")
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"set temp_directory = '{tmp}'")
        floor_inputs(con, landing, Path(tmp))
        con.execute(
            "create table lines as select regency_code, poverty_line, extreme_poverty_line from read_csv($p) "
            "where year = (select max(year) from read_csv($p) where year <= $y)",
            {"p": str(ROOT / "dbt_project" / "seeds" / "poverty_lines.csv"), "y": year},
        )
        pads = Pseudonymiser(KEY.encode()).params
        con.execute(
            "create temp table key_pads as select $ipad::blob as ipad, $opad::blob as opad", pads
        )
        params = {"period_end": period_end}
        for statement in (HERE / "floor.sql").read_text().split(";"):
            text = "\n".join(
                line for line in statement.splitlines() if not line.strip().startswith("--")
            ).strip()
            if text:
                used = {k: v for k, v in params.items() if f"${k}" in text}
                con.execute(text, used)
        rows = con.execute("select count(*) from fct_poverty").fetchone()[0]
        con.close()
        return {"seconds": time.perf_counter() - started, "fct_poverty_rows": rows}


def resubmit(
    home: Path, cache: Path, period: str, scale: str = "kaltim", revision: int = 2
) -> None:
    """One kabupaten sends a new revision (new draws, a later dikirim_pada)."""
    import duckdb

    from orchestration.demo import generate_unit, households_per_unit

    source = cache / f"{RESUBMITTING_UNIT}_{period}_r1"
    target = home / "landing" / f"{RESUBMITTING_UNIT}_{period}_r{revision}"
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["dikirim_pada"] = (
        dt.datetime.fromisoformat(manifest["dikirim_pada"]) + dt.timedelta(days=revision)
    ).isoformat()
    con = duckdb.connect()
    households = households_per_unit(scale)[RESUBMITTING_UNIT]
    generate_unit(con, RESUBMITTING_UNIT, households, period, seed=f"r{revision}")
    for table in ("keluarga", "anggota", "bantuan"):
        columns = [
            c
            for (c, *_) in con.execute(f"select * from {table} limit 0").description
            if c not in ("h", "k")
        ]
        con.execute(
            f"copy (select {', '.join(columns)} from {table}) to '{target / (table + '.csv')}' (header)"
        )
    (target / "manifest.json").write_text(json.dumps(manifest))


def landing(cache: Path, home: Path) -> None:
    """A fresh home holding the submissions, on disk before the clock starts: the floor reads
    the cache in place, so the pipeline must not pay for writing back the benchmark's copy."""
    shutil.copytree(cache, home / "landing")
    os.sync()


def measure(scales: list[str], period: str) -> list[dict]:
    rows = []
    for index, scale in enumerate(scales):
        cache = demo_cache(scale, period)
        # The best of two, for the floor and the pipeline alike, taken in turns: both are what
        # the hardware can do, not what a busy moment allowed (this machine's speed drifts by
        # 20-30 % within an hour). Every measurement is kept in the JSON.
        floors, fulls = [], []
        runs = RUNS.get(scale, 2)
        with tempfile.TemporaryDirectory(dir=HERE / "cache") as tmp:
            for attempt in range(runs):
                floors.append(run_floor(cache, period))
                home = Path(tmp) / f"data{attempt}"
                landing(cache, home)
                fulls.append(run_pipeline(home))
                if attempt + 1 < runs:  # only the last home is kept (for the resubmission)
                    shutil.rmtree(home)
            floor = min(floors, key=lambda r: r["seconds"])
            full = min(fulls, key=lambda r: r["seconds"])
            rows.append({"scale": scale, "measure": "floor", "seconds": floor["seconds"],
                         "peak_mib": None, "all_seconds": [f["seconds"] for f in floors]})  # fmt: skip
            rows.append({"scale": scale, "measure": "pipeline", **full,
                         "all_seconds": [f["seconds"] for f in fulls]})  # fmt: skip
            if index == 0:
                resubmit(home, cache, period)
                os.sync()
                again = run_pipeline(home)
                rows.append({"scale": scale, "measure": "resubmission", **again,
                             "share_of_full_run": again["seconds"] / full["seconds"]})  # fmt: skip
        if index == 0:
            smalls = []
            with tempfile.TemporaryDirectory(dir=HERE / "cache") as tmp:
                for attempt in range(2):
                    home = Path(tmp) / f"data{attempt}"
                    landing(demo_cache("bontang", period), home)
                    smalls.append(run_pipeline(home))
            small = min(smalls, key=lambda r: r["seconds"])
            rows.append({"scale": scale, "measure": "fixed cost", **small,
                         "share_of_full_run": small["seconds"] / full["seconds"],
                         "all_seconds": [r["seconds"] for r in smalls]})  # fmt: skip
        for row in rows:
            if row["scale"] == scale:
                row["ratio_to_floor"] = row["seconds"] / floor["seconds"]
    return rows


def measure_year(period: str, scale: str = "bontang") -> list[dict]:
    """The incremental models' worth: twelve monthly periods in the warehouse, one
    kabupaten resubmits the last month; the next run as every night (the incremental models
    rebuild that submission's rows only), then the same after another revision with
    `--full-refresh` (every model rebuilt from all latest submissions)."""
    year = period[:4]
    periods = [f"{year}-{month:02d}" for month in range(1, 13)]
    rows = []
    with tempfile.TemporaryDirectory(dir=HERE / "cache") as tmp:
        home = Path(tmp) / "data"
        for month in periods:
            shutil.copytree(demo_cache(scale, month), home / "landing", dirs_exist_ok=True)
        os.sync()
        run_pipeline(home)  # the year, built once (not timed)
        for revision, (label, options) in enumerate(
            (("incremental", ()), ("full refresh", ("--full-refresh",))), start=2
        ):
            resubmit(home, demo_cache(scale, periods[-1]), periods[-1], scale, revision)
            os.sync()
            rows.append({"scale": f"{scale}×12", "measure": f"resubmit, {label}",
                         "ratio_to_floor": None, **run_pipeline(home, *options)})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", nargs="+", default=["kaltim", "kaltim2x", "kaltim10x"])
    parser.add_argument("--period", default="2025-03")
    parser.add_argument("--only-year", action="store_true", help="only the 12-period rows")
    parser.add_argument("--year-scale", default="bontang", choices=["bontang", "kaltim"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    (HERE / "cache").mkdir(exist_ok=True)
    try:
        rows = [] if args.only_year else measure(args.scales, args.period)
        rows += measure_year(args.period, args.year_scale)
    finally:
        prepare(None)
    print(f"{'scale':<9} {'measure':<13} {'seconds':>8} {'x floor':>8} {'peak MiB':>9}  stages")
    for row in rows:
        stages = " ".join(f"{k}={v}" for k, v in (row.get("stages") or {}).items())
        if "share_of_full_run" in row:
            stages = f"{row['share_of_full_run']:.0%} of the full run; {stages}"
        peak = "" if row["peak_mib"] is None else row["peak_mib"]
        ratio = "" if row["ratio_to_floor"] is None else f"{row['ratio_to_floor']:.2f}"
        print(
            f"{row['scale']:<9} {row['measure']:<13} {row['seconds']:>8.1f} {ratio:>8} {peak:>9}  {stages}"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"nightly-{stamp}.json").write_text(
        json.dumps({"period": args.period, "rows": rows}, indent=2, default=str) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
