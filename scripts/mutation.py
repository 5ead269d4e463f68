"""Mutation testing of the core modules with mutmut: `make mutation`.

For each module (all of scripts/mutation.toml, or the ones named on the command line):

1. bring the module's work copy of the project (var/mutation/<module>/project, kept
   between runs) up to date and run `mutmut run` there, mutating only that module
   against its `tests` (a short list of fast, focused test files: a kill by any of CI's
   tests is a kill by CI's suite);
2. re-run each survivor in a fresh process (`mutmut apply`, then pytest) against its
   `recheck` list (broader; by default the same): mutmut runs mutants in processes
   forked from one test session, where code run at import time is never re-run;
3. write the score and the survivors to docs/mutation.json, then docs/mutation.md.

Runs are incremental. mutmut 3 keeps each mutant's verdict in the work copy with a hash
of the function it mutates, and re-tests only the mutants of functions whose source
changed (and those of new functions); tests added since the last run are traced first.
Here, on top of that, every survivor of the last run is re-tested (tests may have been
added to kill it), and a mutant killed on the fresh re-run is recorded as killed, so it
is not re-run either. A kill stays a kill until its function changes: `--full` (or
FULL=1 with make) drops the work copy and tests every mutant again, as does changing a
module's `tests` in scripts/mutation.toml.

Each mutant's tests are a new pytest session in a forked process; on SQLite they start
from a copy of one migrated database (tests/fixtures/mutation_db.py) instead of running
the migrations each time, which was most of a mutant's time.

Mutants listed under [equivalent] in scripts/mutation.toml count apart: the score is
killed / (all - equivalent). CPU is scarce: it runs under `nice -n 19`, one module at
a time, MUTATION_JOBS workers (default 1). MUTATION_MINUTES bounds each module's mutmut
run: the mutants it had no time for are reported as unchecked, outside the score (the
next run goes on where it stopped). A fresh re-run costs a Python start and a migrated
database per survivor: MUTATION_FRESH=0 leaves it out, for a first pass over a module
whose survivors tests are to be written against (the report says so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mutation.toml"
RESULTS = ROOT / "docs" / "mutation.json"
REPORT = ROOT / "docs" / "mutation.md"
VENV_BIN = ROOT / ".venv" / "bin"
# One work copy per module, kept between runs: mutmut's verdicts live in it.
WORK = ROOT / "var" / "mutation"
SKIPPED = {
    *(".venv", ".git", "mutants", "staticfiles", "__pycache__", ".pytest_cache", ".env"),
    *(".hypothesis", ".ruff_cache", "node_modules", "var", "test-results"),
}
NICE = ["nice", "-n", "19"]
# mutmut's statuses of a mutant no test caught (yet): re-run in a fresh process.
FRESH_RUN_OPTIONS = ["-p", "no:cacheprovider", "-m", "not browser and not postgres"]
# The migrated test database, copied per session (SQLite only: a DATABASE_URL run creates
# its test database as pytest-django always does).
TEMPLATE_DB_OPTIONS = ["-p", "tests.fixtures.mutation_db"]
# mutmut's exit code for a mutant a test killed, written back for fresh-run kills.
KILLED_EXIT_CODE = 1
UNKILLED = {"survived", "no tests", "suspicious", "skipped"}
# A mutant mutmut had no time for (MUTATION_MINUTES): neither killed nor a survivor.
UNCHECKED = "not checked"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="paths as in scripts/mutation.toml")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite docs/mutation.md from the last runs"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="forget the last runs' verdicts and test every mutant again",
    )
    args = parser.parse_args()
    config = tomllib.loads(CONFIG.read_text())
    if args.render:
        REPORT.write_text(render(load_results(), config))
        return 0
    modules = args.modules or list(config["modules"])
    unknown = [m for m in modules if m not in config["modules"]]
    if unknown:
        parser.error(f"not in {CONFIG.relative_to(ROOT)}: {', '.join(unknown)}")
    for module in modules:
        equivalent = config.get("equivalent", {})
        result = run_module(module, config["modules"][module], equivalent, full=args.full)
        # Read again: another run (of other modules) may have written meanwhile.
        results = {**load_results(), module: result}
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    REPORT.write_text(render(load_results(), config))
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def run_module(module: str, tests: dict, equivalent: dict, *, full: bool = False) -> dict:
    started, commit = time.monotonic(), commit_measured()
    work = work_copy(module, full=full)
    configure(work / "pyproject.toml", module, tests["tests"])
    cached = retest_unkilled(work, module)
    if load_results().get(module, {}).get("tests") != tests["tests"]:
        cached = 0  # a new test list: mutmut tests every mutant again
    mutmut_run(work, module)
    statuses = mutant_statuses(work)
    survivors = sorted(name for name, status in statuses.items() if status in UNKILLED)
    recheck = tests.get("recheck", tests["tests"])
    # A mutant listed as equivalent behaves the same: no fresh run can kill it.
    listed = [name for name in survivors if name in equivalent]
    fresh = [name for name in survivors if name not in equivalent]
    if os.environ.get("MUTATION_FRESH") == "0":
        # A first pass over a module: the survivors to write tests against, at once.
        print(f"== {module}: MUTATION_FRESH=0, {len(fresh)} survivor(s) not re-run")
        confirmed = survivors
    else:
        confirmed = listed + fresh_survivors(work, module, fresh, recheck)
    record_kills(work, module, sorted(set(survivors) - set(confirmed)))
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return {
        "measured": now(),
        "commit": commit,
        "source_sha256": source_sha256(module),
        "tests": tests["tests"],
        "recheck": recheck,
        "mutants": len(statuses),
        "unchecked": counts.get(UNCHECKED, 0),
        "statuses": counts,
        "cached": cached,
        "killed_on_recheck": len(survivors) - len(confirmed),
        "fresh_rerun": os.environ.get("MUTATION_FRESH") != "0",
        "survivors": {name: mutant_diff(work, name) for name in confirmed},
        "minutes": round((time.monotonic() - started) / 60, 1),
    }


def work_copy(module: str, *, full: bool) -> Path:
    """The module's work copy, brought up to date with the project (a file whose content
    changed gets a new mtime: mutmut re-mutates a source newer than its mutants)."""
    home = WORK / module.replace("/", "_").removesuffix(".py")
    if full:
        shutil.rmtree(home, ignore_errors=True)
    work = home / "project"
    sync_tree(ROOT, work)
    # Migrations may have changed: the first session migrates the template again.
    database = home / "database"
    shutil.rmtree(database, ignore_errors=True)
    database.mkdir(parents=True)
    os.environ["MUTATION_TEST_DB"] = str(database)
    return work


def sync_tree(source: Path, target: Path) -> None:
    kept = set()
    for directory, names, files in os.walk(source):
        names[:] = [name for name in names if name not in SKIPPED]
        for name in files:
            path = Path(directory) / name
            relative = path.relative_to(source)
            kept.add(relative)
            copy = target / relative
            content = path.read_bytes()
            if copy.exists() and copy.read_bytes() == content:
                continue
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(content)
            shutil.copymode(path, copy)
    for directory, names, files in os.walk(target):
        names[:] = [name for name in names if name not in SKIPPED]
        for name in files:
            path = Path(directory) / name
            if path.relative_to(target) not in kept:
                path.unlink()


def meta_path(work: Path, module: str) -> Path:
    return work / "mutants" / f"{module}.meta"


def retest_unkilled(work: Path, module: str) -> int:
    """Make mutmut test the last run's survivors again (tests may have been added since);
    the number of verdicts kept from earlier runs."""
    meta = meta_path(work, module)
    if not meta.exists():
        return 0
    data = json.loads(meta.read_text())
    codes = data["exit_code_by_key"]
    for name, code in codes.items():
        if code is not None and status_of(code) in UNKILLED:
            codes[name] = None
    meta.write_text(json.dumps(data, indent=4))
    return sum(code is not None for code in codes.values())


def record_kills(work: Path, module: str, names: list[str]) -> None:
    """Keep the fresh re-run's kills in mutmut's verdicts, so the next run skips them."""
    meta = meta_path(work, module)
    data = json.loads(meta.read_text())
    for name in names:
        data["exit_code_by_key"][name] = KILLED_EXIT_CODE
    meta.write_text(json.dumps(data, indent=4))


def status_of(exit_code: int) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[exit_code]


def mutmut_run(work: Path, module: str) -> None:
    """Run mutmut on every mutant without a verdict, for at most MUTATION_MINUTES."""
    jobs = os.environ.get("MUTATION_JOBS", "1")
    minutes = float(os.environ.get("MUTATION_MINUTES", "0")) or None
    print(f"== {module}: mutmut run ({jobs} worker(s), {minutes or 'no'} minutes' limit)")
    run = [*NICE, VENV_BIN / "mutmut", "run", "--max-children", jobs]
    mutmut = subprocess.Popen(run, cwd=work, start_new_session=True)
    try:
        returncode = mutmut.wait(timeout=minutes and minutes * 60)
    except subprocess.TimeoutExpired:
        # mutmut keeps each result as it comes: what it had no time for stays unchecked.
        os.killpg(mutmut.pid, signal.SIGTERM)
        mutmut.wait()
        print(f"== {module}: stopped after {minutes} minutes", flush=True)
        return
    if returncode != 0:
        # Most often the clean run failed: no mutant was tested, nothing to score.
        raise SystemExit(f"mutmut run failed for {module}; see its output above")


def fresh_survivors(work: Path, module: str, names: list[str], tests: list[str]) -> list[str]:
    print(f"== {module}: {len(names)} survivor(s) to re-run in a fresh process")
    confirmed = []
    for done, name in enumerate(names, 1):
        if survives_fresh(work, module, name, tests):
            confirmed.append(name)
        print(f"   {done}/{len(names)} re-run, {len(confirmed)} still alive", flush=True)
    return confirmed


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def commit_measured() -> str:
    """HEAD, with "+changes" if the work tree differs (in more than this script's output)."""
    commit = git("rev-parse", "--short", "HEAD")
    outputs = [f":!{path.relative_to(ROOT)}" for path in (RESULTS, REPORT)]
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs):
        commit += "+changes"
    return commit


def source_sha256(module: str) -> str:
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()


def configure(pyproject: Path, module: str, tests: list[str]) -> None:
    """Add the module and its tests to [tool.mutmut] of the scratch copy's pyproject.toml."""
    text = pyproject.read_text()
    header = "[tool.mutmut]\n"
    if header not in text:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    added = (
        f"only_mutate = {json.dumps([module])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
    )
    text = text.replace(header, header + added, 1)
    if on_sqlite():
        options = re.search(r"^pytest_add_cli_args = (\[.*\])$", text, re.MULTILINE)
        if options is None:
            raise SystemExit("pyproject.toml's [tool.mutmut] has no pytest_add_cli_args")
        with_template = json.dumps([*json.loads(options[1]), *TEMPLATE_DB_OPTIONS])
        text = text.replace(options[0], f"pytest_add_cli_args = {with_template}")
    pyproject.write_text(text)


def on_sqlite() -> bool:
    return (os.environ.get("DATABASE_URL") or "sqlite").startswith("sqlite")


def mutant_statuses(work: Path) -> dict[str, str]:
    output = subprocess.run(
        [VENV_BIN / "mutmut", "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"^\s+(\S+): (.+)$", output, re.MULTILINE))


def survives_fresh(work: Path, module: str, name: str, tests: list[str]) -> bool:
    """Apply the mutant to the work copy and run the module's recheck tests in a new
    process (all of them: code run at import time is called by no test mutmut saw), on
    the database CI's tests use (SQLite in memory, not the template's file)."""
    source = work / module
    original = source.read_bytes()
    options = FRESH_RUN_OPTIONS
    stat = source.stat()
    try:
        subprocess.run([VENV_BIN / "mutmut", "apply", name], cwd=work, check=True)
        run = subprocess.run(
            [*NICE, VENV_BIN / "pytest", "-x", "-q", *options, *tests],
            cwd=work,
            capture_output=True,
        )
    finally:
        # Same bytes, same mtime: mutmut must not take the module for changed.
        source.write_bytes(original)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return run.returncode == 0  # 1: a test failed; 2 and up: the mutant broke the import


def mutant_diff(work: Path, name: str) -> str:
    shown = subprocess.run(
        [VENV_BIN / "mutmut", "show", name], cwd=work, capture_output=True, text=True
    ).stdout
    return "\n".join(
        line
        for line in shown.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def render(results: dict, config: dict) -> str:
    equivalent: dict[str, str] = config.get("equivalent", {})
    lines = [
        "# Mutation testing",
        "",
        "Generated by `make mutation` (scripts/mutation.py, mutmut 3.8.1); do not edit by hand.",
        "Each module is mutated alone against the tests listed in scripts/mutation.toml (the",
        "suite CI runs, without browser and PostgreSQL tests). Every survivor is re-run in a",
        "fresh process against the module's broader `recheck` list; equivalent mutants",
        "(scripts/mutation.toml, one reason each) are left out of the score. Run it before",
        "resolving an issue that changes one of these modules: `make mutation MODULES=path`.",
        "",
        "Runs are incremental (scripts/mutation.py says how): a verdict is kept until the",
        "function it mutates changes, except a survivor's, which every run tests again.",
        "Cached: the verdicts a run kept from earlier runs; minutes: that run's time.",
        "",
        "What this measure does not see: mutmut mutates functions and methods, not module-level",
        "tables (audit.chain.HASHED_FIELDS, rules.INVISIBLE_RANGES, workflow.DEFAULT_APPROVALS);",
        "tests pin those directly (tests/test_audit_golden.py, tests/test_rules_guarantees.py,",
        "tests/test_workflow_guarantees.py). Browser tests are left out, so a mutant only",
        "Chromium would catch counts as a survivor here.",
        "",
        "| module | commit | mutants | cached | unchecked | killed | equivalent | survivors "
        "| score | minutes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for module, result in sorted(results.items()):
        survivors = result["survivors"]
        equivalents = [name for name in survivors if name in equivalent]
        left = len(survivors) - len(equivalents)
        unchecked = result.get("unchecked", 0)
        scored = result["mutants"] - unchecked - len(equivalents)
        killed = scored - left
        score = f"{100 * killed / scored:.1f} %" if scored else "n/a"
        lines.append(
            f"| {module} | {result['commit']} | {result['mutants']} | {result.get('cached', 0)} "
            f"| {unchecked} | {killed} | {len(equivalents)} | {left} | {score} "
            f"| {result['minutes']} |"
        )
    for module in sorted(set(config["modules"]) - set(results)):
        lines.append(f"| {module} | not run yet | | | | | | | | |")
    lines += [
        "",
        "Killed counts every mutant a test caught: failed, timed out, or killed again on the",
        "fresh-process re-run; a mutant mutmut reports as having no test counts as a survivor",
        "only if the re-run confirms it. Unchecked: mutants the run had no time for",
        "(MUTATION_MINUTES), left out of the score; the score is of the checked ones.",
    ]
    for module, result in sorted(results.items()):
        lines += ["", f"## {module}", "", f"Measured {result['measured']} on {result['commit']}."]
        if result.get("fresh_rerun") is False:
            lines.append(
                "Its survivors were not re-run in a fresh process (MUTATION_FRESH=0 or "
                "stopped before): some may be killed there."
            )
        lines.append(
            "Statuses from mutmut: "
            + ", ".join(f"{status} {count}" for status, count in sorted(result["statuses"].items()))
            + f"; killed on the fresh re-run: {result['killed_on_recheck']}."
        )
        for title, wanted in (("Equivalent mutants", True), ("Survivors", False)):
            names = [n for n in result["survivors"] if (n in equivalent) is wanted]
            if not names:
                continue
            lines += ["", f"### {title}", ""]
            for name in names:
                reason = f": {equivalent[name]}" if wanted else ""
                lines += [f"- `{name}`{reason}", "", "  ```diff"]
                lines += [f"  {line}" for line in result["survivors"][name].splitlines()]
                lines += ["  ```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
