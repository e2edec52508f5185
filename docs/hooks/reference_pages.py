"""mkdocs hook: the reference pages generated from the code, so they cannot drift from it.

- ``reference/exit-codes.md``: the verdicts' exit codes from :mod:`evalkit.compare.status`
  (``EXIT_CODES``, ``EXIT_ERROR``, ``Status.code``), the usage error from :mod:`evalkit.cli`
  (``EXIT_USAGE``), Ctrl-C / SIGTERM from :mod:`evalkit.interrupts`, and a sweep's exit code
  computed by :func:`evalkit.sweep.summary.sweep_exit_code` itself.
- ``reference/config.md``: every config group and key, from
  :func:`evalkit.config_reference.reference_markdown` (the config schema, and the targets of the
  ``dataset`` / ``models`` / ``index`` / ``engine`` options: :mod:`evalkit.config_targets`); a
  target-group key its target does not take or documents without help is a warning.
- ``explanation/design.md``: ``evalkit/README.md`` (the package map and the contracts between
  the layers), which lives beside the code it describes.
- ``assets/frontier_cranfield_memory.png``: the sweep figure in ``benchmarks/figures/``.

A page that cannot be generated is a warning, so ``mkdocs build --strict`` fails.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.evalkit_reference")

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "assets/frontier_cranfield_memory.png": "benchmarks/figures/frontier_cranfield_memory.png"
}


def _import_evalkit() -> None:
    """evalkit from this checkout (mkdocs may run from an environment where it is installed
    elsewhere, or not installed at all)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


# What each verdict means and what to do: one entry per Status, checked against the enum below.
_VERDICT_TEXT = {
    "PASS": ("every gate passed", "switch"),
    "WARN": (
        "quality shown no worse and no contract broken; follow-ups need a decision",
        "work through the follow-ups and actions, then switch",
    ),
    "INCONCLUSIVE": (
        "nothing blocks, but the primary metric's call is inconclusive: the data cannot show "
        "that B is no worse",
        "judge the queries evalkit names, starting with `judging_worklist.csv`, then re-run",
    ),
    "BLOCK": (
        "B is worse on the primary metric, or breaks a contract (vectors, endpoint checks, latency)",
        "do not switch",
    ),
}


def exit_codes_markdown() -> str:
    _import_evalkit()
    from evalkit.cli import EXIT_USAGE
    from evalkit.compare.status import EXIT_CODES, EXIT_ERROR, Status
    from evalkit.interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED
    from evalkit.sweep.jobs import JobOutcome
    from evalkit.sweep.summary import sweep_exit_code

    missing = {s.value for s in Status} ^ set(_VERDICT_TEXT)
    if missing:
        raise ValueError(f"docs/hooks/reference_pages.py: describe the verdicts {sorted(missing)}")
    rows = [
        "| exit code | outcome | means | what to do | metric `verdict_code` |",
        "|---|---|---|---|---|",
    ]
    for status in sorted(Status, key=lambda s: s.severity):
        means, todo = _VERDICT_TEXT[status.value]
        rows.append(
            f"| **{EXIT_CODES[status]}** | `{status.value}` | {means} | {todo} | {status.code:g} |"
        )
    rows += [
        f"| **{EXIT_ERROR}** | error | bad input or configuration, an unreachable endpoint or "
        "tracking store, a tracking store that failed mid-run while the verdict was PASS / WARN "
        "(a BLOCK keeps its code, an INCONCLUSIVE too), a store or output folder that cannot be "
        "written | the one error line says what and where | |",
        f"| **{EXIT_USAGE}** | usage error | an unknown key (`modls=[x]`, `dataset.pth=...`), an "
        "unknown config group option (`models=[e5_smal]`), no model version (`models=[]`) or a "
        "version named twice (`models=[x,x]`): stops before anything runs | the line lists the "
        "valid choices | |",
        f"| **{EXIT_INTERRUPTED}** | interrupted | Ctrl-C (the MLflow runs are ended KILLED) | | |",
        f"| **{EXIT_TERMINATED}** | terminated | SIGTERM (the MLflow runs are ended KILLED) | | |",
    ]

    def sweep(*codes: int) -> int:
        return sweep_exit_code([JobOutcome(i, [], c) for i, c in enumerate(codes)])

    block, inconclusive, ok = EXIT_CODES[Status.BLOCK], EXIT_CODES[Status.INCONCLUSIVE], 0
    cases = [
        (ok, ok),
        (ok, inconclusive),
        (ok, EXIT_ERROR, inconclusive),
        (ok, EXIT_USAGE, inconclusive),
        (inconclusive, EXIT_ERROR, block),
    ]
    sweep_rows = ["| the jobs' exit codes | the sweep's exit code |", "|---|---|"]
    sweep_rows += [f"| {', '.join(map(str, c))} | **{sweep(*c)}** |" for c in cases]
    return "\n".join(
        [
            "# Exit codes",
            "",
            "Generated from `evalkit/compare/status.py` (`EXIT_CODES`, `EXIT_ERROR`, "
            "`Status.code`), `evalkit/cli.py` (`EXIT_USAGE`), `evalkit/interrupts.py` and "
            "`evalkit/sweep/summary.py` (`sweep_exit_code`). `evalkit --help` lists them too.",
            "",
            *rows,
            "",
            "The parent run's tag `evalkit.verdict` is the verdict, `evalkit.exit_code` the code "
            "and the metric `verdict_code` the last column. `task=online` (the canary) uses the "
            "same codes; `task=check` exits "
            f"{block} when a check FAILs. A usage error is printed as one line, e.g. "
            "`evalkit: usage error: models=[e5_smal]: no option 'e5_smal' in config group models "
            "(conf/models/); choose from: e5_small, e5_small_openai, openai, precomputed, "
            "sentence_transformers, use_m3 (did you mean e5_small?)`.",
            "",
            "## A sweep (`--multirun`)",
            "",
            f"A sweep exits with its worst job's outcome: {block} if any job's verdict is BLOCK, "
            f"else a failed job's code ({EXIT_ERROR} when any failed with {EXIT_ERROR}), else "
            f"{inconclusive} if any job is INCONCLUSIVE, else {ok}. A failed job does not stop "
            "the others. Computed by `sweep_exit_code` for a few sweeps:",
            "",
            *sweep_rows,
            "",
        ]
    )


def config_markdown() -> str:
    _import_evalkit()
    try:
        from evalkit.config_reference import reference_markdown
    except ImportError as exc:
        log.warning(
            "reference/config.md cannot be generated: evalkit.config_reference."
            "reference_markdown is missing (%s)",
            exc,
        )
        return "# Configuration\n\nNot generated: `evalkit.config_reference` is missing.\n"
    text = reference_markdown().strip() + "\n"
    from evalkit.config_targets import undocumented_keys

    for problem in undocumented_keys():  # a key without help fails mkdocs build --strict
        log.warning("reference/config.md: %s", problem)
    intro = (
        "Generated from the configuration schema (`evalkit/config_reference.py`). Set any key "
        "on the command line as `key=value` (`dataset.path=tests/data/adi`), choose a group's "
        "option as `group=option` (`dataset=beir`); `evalkit --cfg job` prints the composed "
        "configuration.\n\n"
    )
    if text.startswith("# "):
        title, _, rest = text.partition("\n")
        return f"{title}\n\n{intro}{rest.lstrip()}"
    return f"# Configuration\n\n{intro}{text}"


def design_markdown() -> str:
    source = (REPO / "evalkit" / "README.md").read_text(encoding="utf-8")
    title, _, rest = source.partition("\n")
    note = (
        "\n\n!!! note\n    This page is `evalkit/README.md`, the package map and the contracts "
        "between the layers, kept beside the code it describes.\n"
    )
    layout = (
        "\n## Repository layout\n\n```\n"
        "evalkit/     the package (above)\n"
        "conf/        dataset/ models/ index/ engine/ tracking/ gates/ clicks/ checks/ online/ "
        "(mirror the code)\n"
        "tests/       unit tests per layer + end-to-end CLI tests on tests/data (ADI, CISI, MED, "
        "Cranfield; gzip BEIR folders)\n"
        "benchmarks/  scripts printing ratios and throughput; results in benchmarks/README.md\n"
        "docs/        this site (mkdocs.yml; reference pages generated by docs/hooks/)\n"
        "mlruns/      the embedded MLflow store (contents git-ignored)\n```\n"
    )
    return title + note + rest + layout


def on_files(files: Files, config) -> Files:
    generated = {
        "reference/exit-codes.md": exit_codes_markdown(),
        "reference/config.md": config_markdown(),
        "explanation/design.md": design_markdown(),
    }
    for uri, content in generated.items():
        if files.get_file_from_path(uri) is not None:
            log.warning("docs/%s is generated by docs/hooks/reference_pages.py: delete it", uri)
            files.remove(files.get_file_from_path(uri))
        files.append(File.generated(config, uri, content=content))
    for uri, source in FIGURES.items():
        files.append(File.generated(config, uri, abs_src_path=str(REPO / source)))
    return files
