"""Mutation testing of the core modules with mutmut: `make mutation`.

For each module (all of scripts/mutation.toml, or the ones named on the command line):

1. copy the project to a scratch directory and run `mutmut run` there, mutating only
   that module against its tests (mutmut 3 keeps its state in `mutants/`; the working
   tree is never touched);
2. re-run each survivor in a fresh process (`mutmut apply`, then pytest): mutmut runs
   mutants inside forked workers that share one test session, and a survivor must be
   one in a clean run too;
3. write the score and the survivors to docs/mutation.json, then docs/mutation.md.

`--recheck` runs only the last run's survivors again, against today's tests: for tests
added to kill them, when the module itself has not changed since that run (its
source's SHA-256 is kept with the result). Minutes instead of an hour.

Mutants listed under [equivalent] in scripts/mutation.toml count apart: the score is
killed / (all - equivalent). CPU is scarce: it runs under `nice -n 19`, one module at
a time, MUTATION_JOBS workers (default 1). MUTATION_MINUTES bounds each module's mutmut
run: the mutants it had no time for are reported as unchecked, outside the score.
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
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "scripts" / "mutation.toml"
RESULTS = ROOT / "docs" / "mutation.json"
REPORT = ROOT / "docs" / "mutation.md"
VENV_BIN = ROOT / ".venv" / "bin"
SKIPPED = {".venv", ".git", "mutants", "staticfiles", "__pycache__", ".pytest_cache", ".env"}
NICE = ["nice", "-n", "19"]
# mutmut's statuses of a mutant no test caught (yet): re-run in a fresh process.
FRESH_RUN_OPTIONS = ["-p", "no:cacheprovider", "-m", "not browser and not postgres"]
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
        "--recheck",
        action="store_true",
        help="re-run only the last run's survivors (the module must be unchanged since)",
    )
    args = parser.parse_args()
    config = tomllib.loads(CONFIG.read_text())
    if args.render:
        REPORT.write_text(render(json.loads(RESULTS.read_text()), config.get("equivalent", {})))
        return 0
    modules = args.modules or list(config["modules"])
    unknown = [m for m in modules if m not in config["modules"]]
    if unknown:
        parser.error(f"not in {CONFIG.relative_to(ROOT)}: {', '.join(unknown)}")
    for module in modules:
        tests = config["modules"][module]["tests"]
        if args.recheck:
            result = recheck_module(module, tests, load_results().get(module))
        else:
            result = run_module(module, tests)
        # Read again: another run (of other modules) may have written meanwhile.
        results = {**load_results(), module: result}
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    REPORT.write_text(render(load_results(), config.get("equivalent", {})))
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def run_module(module: str, tests: list[str]) -> dict:
    started, commit = time.monotonic(), commit_measured()
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        work = scratch_copy(Path(scratch), module, tests)
        mutmut_run(work, module)
        return scored_run(work, module, tests, started, commit)


def scored_run(work: Path, module: str, tests: list[str], started: float, commit: str) -> dict:
    """Score the mutmut run in `work`: re-run its survivors in a fresh process."""
    statuses = mutant_statuses(work)
    survivors = sorted(name for name, status in statuses.items() if status in UNKILLED)
    confirmed = fresh_survivors(work, module, survivors, tests)
    diffs = {name: mutant_diff(work, name) for name in confirmed}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return {
        "measured": now(),
        "commit": commit,
        "source_sha256": source_sha256(module),
        "tests": tests,
        "mutants": len(statuses),
        "unchecked": counts.get(UNCHECKED, 0),
        "statuses": counts,
        "killed_on_recheck": len(survivors) - len(confirmed),
        "survivors": diffs,
        "minutes": round((time.monotonic() - started) / 60, 1),
    }


def recheck_module(module: str, tests: list[str], last: dict | None) -> dict:
    """The last run's survivors against today's tests; the rest of that run stands."""
    if last is None or measured_source_sha256(module, last) != source_sha256(module):
        raise SystemExit(f"{module} changed since its last full run (or has none): run it whole")
    started, commit = time.monotonic(), commit_measured()
    survivors = sorted(last["survivors"])
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        work = scratch_copy(Path(scratch), module, tests)
        statuses = mutmut_run(work, module, survivors)
        alive = [name for name in survivors if statuses.get(name) in UNKILLED]
        confirmed = set(fresh_survivors(work, module, alive, tests))
    return {
        **last,
        "survivors": {name: diff for name, diff in last["survivors"].items() if name in confirmed},
        "rechecked": {
            "measured": now(),
            "commit": commit,
            "tests": tests,
            "survivors": len(survivors),
            "killed": len(survivors) - len(confirmed),
            "minutes": round((time.monotonic() - started) / 60, 1),
        },
    }


def scratch_copy(scratch: Path, module: str, tests: list[str]) -> Path:
    work = scratch / "project"
    shutil.copytree(ROOT, work, ignore=lambda _dir, names: SKIPPED.intersection(names))
    configure(work / "pyproject.toml", module, tests)
    return work


def mutmut_run(work: Path, module: str, names: list[str] = ()) -> dict[str, str]:
    """Run mutmut (on every mutant, or on `names`) for at most MUTATION_MINUTES; the
    status of each mutant."""
    jobs = os.environ.get("MUTATION_JOBS", "1")
    minutes = float(os.environ.get("MUTATION_MINUTES", "0")) or None
    print(f"== {module}: mutmut run ({jobs} worker(s), {minutes or 'no'} minutes' limit)")
    run = [*NICE, VENV_BIN / "mutmut", "run", "--max-children", jobs, *names]
    mutmut = subprocess.Popen(run, cwd=work, start_new_session=True)
    try:
        returncode = mutmut.wait(timeout=minutes and minutes * 60)
    except subprocess.TimeoutExpired:
        # mutmut keeps each result as it comes: what it had no time for stays unchecked.
        os.killpg(mutmut.pid, signal.SIGTERM)
        mutmut.wait()
        print(f"== {module}: stopped after {minutes} minutes", flush=True)
        return mutant_statuses(work)
    if returncode != 0:
        # Most often the clean run failed: no mutant was tested, nothing to score.
        raise SystemExit(f"mutmut run failed for {module}; see its output above")
    return mutant_statuses(work)


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


def measured_source_sha256(module: str, result: dict) -> str | None:
    """The SHA-256 of the module a run mutated; for runs from before it was kept, read
    from the run's commit if that commit was clean."""
    if "source_sha256" in result:
        return result["source_sha256"]
    if "+" in result["commit"]:
        return None
    source = subprocess.run(
        ["git", "show", f"{result['commit']}:{module}"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return hashlib.sha256(source).hexdigest()


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
    pyproject.write_text(text.replace(header, header + added, 1))


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
    """Apply the mutant to the scratch copy and run its tests in a new process: those
    mutmut saw calling the mutated function, or all of the module's if none did."""
    source = work / module
    original = source.read_text()
    try:
        subprocess.run([VENV_BIN / "mutmut", "apply", name], cwd=work, check=True)
        run = subprocess.run(
            [*NICE, VENV_BIN / "pytest", "-x", "-q", *FRESH_RUN_OPTIONS]
            + (tests_calling(work, name) or tests),
            cwd=work,
            capture_output=True,
        )
    finally:
        source.write_text(original)
    return run.returncode == 0  # 1: a test failed; 2 and up: the mutant broke the import


def tests_calling(work: Path, name: str) -> list[str]:
    """The tests mutmut recorded calling the function of mutant `name`."""
    stats = json.loads((work / "mutants" / "mutmut-stats.json").read_text())
    function = name.rsplit("__mutmut_", 1)[0]
    return sorted(stats["tests_by_mangled_function_name"].get(function, []))


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


def measured_on(result: dict) -> str:
    if "rechecked" in result:
        return f"{result['commit']}, survivors {result['rechecked']['commit']}"
    return result["commit"]


def render(results: dict, equivalent: dict[str, str]) -> str:
    lines = [
        "# Mutation testing",
        "",
        "Generated by `make mutation` (scripts/mutation.py, mutmut 3.8.1); do not edit by hand.",
        "Each module is mutated alone against the tests listed in scripts/mutation.toml (the",
        "suite CI runs, without browser and PostgreSQL tests). Every survivor is re-run in a",
        "fresh process; equivalent mutants (scripts/mutation.toml, one reason each) are left",
        "out of the score. Run it before resolving an issue that changes one of these modules.",
        "",
        "What this measure does not see: mutmut mutates functions and methods, not module-level",
        "tables (audit.chain.HASHED_FIELDS, rules.INVISIBLE_RANGES, workflow.DEFAULT_APPROVALS);",
        "tests pin those directly (tests/test_audit_golden.py, tests/test_rules_guarantees.py,",
        "tests/test_workflow_guarantees.py). Browser tests are left out, so a mutant only",
        "Chromium would catch counts as a survivor here.",
        "",
        "| module | commit | mutants | unchecked | killed | equivalent | survivors | score "
        "| minutes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
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
            f"| {module} | {measured_on(result)} | {result['mutants']} | {unchecked} | {killed} "
            f"| {len(equivalents)} | {left} | {score} | {result['minutes']} |"
        )
    lines += [
        "",
        "Killed counts every mutant a test caught: failed, timed out, or killed again on the",
        "fresh-process re-run; a mutant mutmut reports as having no test counts as a survivor",
        "only if the re-run confirms it. Unchecked: mutants the run had no time for",
        "(MUTATION_MINUTES), left out of the score; the score is of the checked ones.",
    ]
    for module, result in sorted(results.items()):
        lines += ["", f"## {module}", "", f"Measured {result['measured']} on {result['commit']}."]
        if "rechecked" in result:
            again = result["rechecked"]
            lines.append(
                f"Its {again['survivors']} survivors re-run {again['measured']} on "
                f"{again['commit']} (module unchanged), with today's tests: "
                f"{again['killed']} killed"
                + (
                    f", {again['unreached']} not reached before the run was stopped."
                    if again.get("unreached")
                    else "."
                )
            )
        if result.get("fresh_rerun") is False:
            lines.append(
                "Stopped before its survivors were re-run in a fresh process: some may be "
                "killed there."
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
