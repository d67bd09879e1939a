"""The command line: parse arguments, call a core function, turn the result into an exit code.

Exit 0 when the work completed (whatever the scores), 2 for unusable input or configuration
(one line on stderr), 130 on Ctrl-C; `check` exits 1 when it lists disagreements. GraderError becomes
an exit code here and nowhere else (but in demo.py, `make demo`'s own entry point).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .records import GraderError
from .feedback.terminal import printable

EXIT_OK, EXIT_DISAGREES, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _warn_if_not_isolated() -> None:
    """One line on stderr before grading where student code runs without full isolation."""
    from .sandbox.modes import mode

    warning = mode().warning()
    if warning:
        print(warning, file=sys.stderr)


def _course_through_the_kit(course_dir: Path, config: str | None) -> None:
    """The course's own `nbgrader autograde` made to grade through the kit too, said in one line."""
    from .platforms.nbgrader_course import make_it_grade_through_the_kit

    said = make_it_grade_through_the_kit(course_dir, str(Path(config).resolve()) if config else None)
    if said:
        print(f"autograder: {said}", file=sys.stderr)


def cmd_grade(args) -> int:
    from .course.config import load_config

    path = Path(args.path)
    if not path.exists():
        raise GraderError(f"no such file: {path}")
    config = load_config(args.config)
    parts = config.select_parts(args.parts.split(",")) if args.parts is not None else None
    from .pipeline import Grader

    _warn_if_not_isolated()
    with Grader(config, hide=(path.resolve().parent,)) as grader:  # known now: the template can hide it from the start
        report = grader.grade(path, parts=parts)
    if report.error:
        raise GraderError(f"{path}: {report.error}")
    if args.json:
        from .feedback.report import results_json

        json.dump(results_json(report, config), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from .feedback.report import print_report

        print_report(report)
    return EXIT_OK


def cmd_batch(args) -> int:
    from .batch import grade_batch
    from .batch.summary import print_summary
    from .course.config import load_config

    if args.workers is not None and args.workers < 1:
        raise GraderError("--workers must be at least 1")
    config = load_config(args.config)
    if not args.scheduler:  # on a cluster the workers isolate, each as its machine allows
        _warn_if_not_isolated()
    outcome = grade_batch(Path(args.path), Path(args.out), config, workers=args.workers,
                          scheduler=args.scheduler, force=args.force, assignment=args.assignment,
                          layout=args.layout)
    print_summary(outcome, config)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.failures:
        raise GraderError(f"{len(outcome.failures)} submission(s) could not be graded because the grader "
                          f"failed (listed above); run the same command again to retry them")
    return EXIT_OK


def cmd_export(args) -> int:
    """A batch's grades as a gradebook imports them: plain (student, total) or Canvas's import file."""
    from .batch import gradebook, outputs
    from .files import write_atomic

    out = Path(args.dir)
    csv_path = out / outputs.CSV_NAME
    if not csv_path.is_file():
        raise GraderError(f"{out} holds no {outputs.CSV_NAME}: give the --out folder of `autograder batch`")
    results = {}
    for path in sorted((out / outputs.RESULTS).glob("*.json")):
        result = outputs.read_result(out, path.stem)
        if result is not None:
            results[path.stem] = result
    results = gradebook.apply_overrides(results, gradebook.read_overrides(out), out).results
    assignment = args.assignment or out.resolve().name
    if args.canvas:
        text, unmatched = gradebook.canvas_import_text(results, Path(args.canvas), assignment)
        for student in unmatched:
            print(f"autograder: warning: {printable(student)} is not in the Canvas export; not exported",
                  file=sys.stderr)
    else:
        text = gradebook.gradebook_text(results, assignment)
    if args.out:
        write_atomic(Path(args.out), text)
        print(f"wrote {args.out}: {len(results)} graded student(s)")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_release(args) -> int:
    from .course.config import load_config
    from .platforms.nbgrader_release import DEFAULT_OUT_DIR, DEFAULT_SOURCE, release, stamp_source

    source, config = Path(args.source or DEFAULT_SOURCE), load_config(args.config)
    needing_you = _print_disagreements(source, config, stampable=False)
    if needing_you:
        raise GraderError(f"release refused: {needing_you} disagreement(s) between {source.name}, "
                          f"{config.path.name} and the checks need you (listed above; `autograder check` lists all)")
    for change in stamp_source(source, config):
        print(f"from {config.path.name}: {change}")
    out = release(source, Path(args.out or DEFAULT_OUT_DIR), config)
    print(f"released {out}")
    return EXIT_OK


def cmd_check(args) -> int:
    from .course.config import load_config
    from .platforms.nbgrader_release import DEFAULT_SOURCE

    source, config = Path(args.notebook or DEFAULT_SOURCE), load_config(args.config)
    found = _print_disagreements(source, config)
    if found:
        print(f"{found} disagreement(s) between {source} and {config.path}")
        return EXIT_DISAGREES
    print(f"{source} agrees with {config.path}")
    return EXIT_OK


def _print_disagreements(source: Path, config, stampable: bool = True) -> int:
    """Print each disagreement (those release stamps only if `stampable`); return how many."""
    from .consistency import check_assignment

    found = [d for d in check_assignment(source, config) if stampable or not d.stampable]
    for disagreement in found:
        print(disagreement.describe(source.name))
    return len(found)


def cmd_gradescope_build(args) -> int:
    from .platforms.gradescope_build import build_zip

    built = build_zip(args.out, config_path=args.config, torch_version=args.torch)
    print(f"wrote {built.path} ({len(built.members)} files, torch {built.torch_version} CPU); "
          f"upload it as the assignment's autograder")
    return EXIT_OK


def cmd_gradescope_run(args) -> int:
    from .platforms.gradescope import run
    from .feedback.report import summary_text

    report, written = run(args.root, config_path=args.config)
    print(printable(summary_text(report)))  # run_autograder's stdout: the instructor's debugging view
    print(printable(f"wrote {written}"))
    return EXIT_OK


def cmd_gradescope_selfcheck(args) -> int:
    from .platforms.gradescope import selfcheck

    report = selfcheck(config_path=args.config)
    print(f"self-check passed: the reference solution scored {report.score:g} / {report.max_score:g}")
    return EXIT_OK


def cmd_nbgrader_autograde(args) -> int:
    from .platforms.nbgrader_autograde import autograde

    if args.workers is not None and args.workers < 1:
        raise GraderError("--workers must be at least 1")
    _warn_if_not_isolated()
    result = autograde(args.assignment, Path(args.course_dir), student=args.student, workers=args.workers,
                       config_path=args.config)
    for student in result.students:
        notes = f"  ({'; '.join(student.notes)})" if student.notes else ""
        print(printable(f"{student.student:<24} {student.score:g} / {student.max_score:g}{notes}"))
    print(f"autograded {len(result.students)} submission(s) of {result.assignment} in {result.seconds:.1f} s; "
          f"scores are in the gradebook: `nbgrader export`, `nbgrader generate_feedback {result.assignment}`")
    _course_through_the_kit(Path(args.course_dir), args.config)
    return EXIT_OK


def cmd_nbgrader_setup(args) -> int:
    from .platforms.nbgrader_course import setup, status

    toml = str(Path(args.config).resolve()) if args.config else None
    written = setup(Path(args.course_dir), grading_toml=toml)
    print(f"wrote the kit's preprocessors into {written}")
    print(status(Path(args.course_dir)).line())
    return EXIT_OK


def cmd_doctor(args) -> int:
    from .course.config import load_config
    from .platforms.nbgrader_course import doctor_line
    from .sandbox.doctor import diagnose

    print(diagnose(load_config(args.config).limits))
    course = doctor_line()  # in an nbgrader course folder: does it grade through the kit
    if course:
        print(course)
    return EXIT_OK


DESCRIPTION = """\
Grade "neural network from scratch" notebooks: the student's Linear, ReLU, Softmax and NLLLoss
classes run in a sandbox, and hidden checks of shapes, values and gradients turn into points.
Points, tolerances, limits and the parts themselves come from grading.toml."""

EPILOG = """\
examples:
  autograder grade submissions/alice.ipynb           a report with feedback, on the terminal
  autograder grade alice.zip --json > results.json   Gradescope's results.json on stdout
  autograder grade alice.py --parts linear,relu      only some parts
  autograder batch submissions/ --out graded         a whole class: grades.csv, report.html, results/
  autograder export graded --canvas canvas.csv --out import.csv   grades for Canvas's gradebook import
  autograder release                                 the student notebook, from the source notebook
  autograder gradescope build --out autograder.zip   the zip to upload to Gradescope
  autograder nbgrader autograde ps1                  nbgrader's autograde, with the kit's grader
  autograder nbgrader setup                          make `nbgrader autograde` grade through the kit
  autograder grade alice.ipynb --config course.toml  your course's points over the kit's defaults
  autograder doctor                                  which isolation this machine gives student code

exit status: 0 when the work completed (whatever the scores), 2 with a one-line message when an
input or the configuration is unusable, 130 when interrupted (Ctrl-C).
See README.md for the details of each command."""

CONFIG_HELP = ("a course file laid over the kit's grading.toml: it names only what it changes "
               "(points, limits, [gradescope], new parts); allowed before or after the command "
               "(default: $AUTOGRADER_CONFIG, else none)")


def _command(commands, name: str, common, help: str, description: str | None = None):
    description = description or help[0].upper() + help[1:] + "."
    return commands.add_parser(name, parents=[common], help=help, description=description)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="TOML", help=CONFIG_HELP)
    # the same option after the command; SUPPRESS keeps a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="TOML", default=argparse.SUPPRESS, help=CONFIG_HELP)
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    grade = _command(commands, "grade", common, "grade one submission (.ipynb, .py or .zip)")
    grade.add_argument("path", metavar="PATH", help="the student's notebook, a .py file defining the classes, "
                                                     "or a .zip holding one of those")
    grade.add_argument("--json", action="store_true", help="print Gradescope results.json to stdout")
    grade.add_argument("--parts", metavar="PART,...", help="comma-separated parts to grade (default: all)")
    grade.set_defaults(run=cmd_grade)

    batch = _command(commands, "batch", common, "grade a class: folder, zip, nbgrader tree or Gradescope export")
    batch.add_argument("path", metavar="PATH",
                       help="folder or zip of submissions, nbgrader course (submitted/), Gradescope export zip")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder: grades.csv, report.html, results/")
    batch.add_argument("--workers", type=int, metavar="N", help="submissions graded at once (default: CPU count)")
    batch.add_argument("--force", action="store_true", help="regrade students that already have a result")
    batch.add_argument("--assignment", metavar="NAME", help="nbgrader: which assignment under submitted/<student>/")
    batch.add_argument("--layout", default="auto", metavar="LAYOUT",  # checked by grade_batch (lazy imports)
                       help="how PATH is laid out: auto (the default: recognised at its top only, never inside "
                            "a student's folder), folder (one file or folder per student), nbgrader (a course "
                            "with submitted/), gradescope (an Export Submissions folder or zip)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler address (tcp://host:8786): grade on that cluster")
    batch.set_defaults(run=cmd_batch)

    export = _command(commands, "export", common, "a batch's grades (with overrides.csv) as gradebooks import them")
    export.add_argument("dir", metavar="DIR", help="the --out folder of `autograder batch`")
    export.add_argument("--assignment", metavar="NAME", help="the assignment's column name (default: DIR's name)")
    export.add_argument("--canvas", metavar="CSV", help="Canvas's own gradebook export: write Canvas's import "
                                                         "file, students matched by SIS Login ID or SIS User ID")
    export.add_argument("--out", metavar="CSV", help="file to write (default: standard output)")
    export.set_defaults(run=cmd_export)

    release = _command(commands, "release", common, "generate the student notebook with nbgrader")
    release.add_argument("--source", metavar="NOTEBOOK",
                         help="source notebook (default: assignment/nn_from_scratch.ipynb)")
    release.add_argument("--out", metavar="DIR", help="output folder (default: student_template/)")
    release.set_defaults(run=cmd_release)

    check = _command(commands, "check", common,
                     "list every disagreement between the source notebook, grading.toml and the checks "
                     "(exit 1 if any, 0 if none)")
    check.add_argument("notebook", nargs="?", metavar="NOTEBOOK",
                       help="source notebook (default: assignment/nn_from_scratch.ipynb)")
    check.set_defaults(run=cmd_check)

    gradescope = _command(commands, "gradescope", common, "Gradescope autograder: build the zip, run inside it")
    gradescope_commands = gradescope.add_subparsers(dest="gradescope_command", required=True, metavar="COMMAND")
    build = _command(gradescope_commands, "build", common, "write the autograder zip to upload")
    build.add_argument("--out", default="autograder.zip", metavar="ZIP", help="zip to write (default: autograder.zip)")
    build.add_argument("--torch", metavar="VERSION", help="torch version setup.sh pins (default: the installed one)")
    build.set_defaults(run=cmd_gradescope_build)
    run = _command(gradescope_commands, "run", common, "grade a submission inside Gradescope (run_autograder)")
    run.add_argument("--root", metavar="DIR", help="the /autograder folder (default: $AUTOGRADER_ROOT or /autograder)")
    run.set_defaults(run=cmd_gradescope_run)
    selfcheck = _command(gradescope_commands, "selfcheck", common, "check the reference solution gets full marks here")
    selfcheck.set_defaults(run=cmd_gradescope_selfcheck)

    nbgrader = _command(commands, "nbgrader", common, "nbgrader course: grade submitted/ into the gradebook")
    nbgrader_commands = nbgrader.add_subparsers(dest="nbgrader_command", required=True, metavar="COMMAND")
    autograde = _command(nbgrader_commands, "autograde", common,
                         "like `nbgrader autograde --force`, with the kit's sandboxed batch grader")
    autograde.add_argument("assignment", metavar="ASSIGNMENT", help="assignment name (as in source/<assignment>/)")
    autograde.add_argument("--course-dir", default=".", metavar="DIR", help="the nbgrader course folder (default: .)")
    autograde.add_argument("--student", metavar="ID", help="only this student id (a glob, as nbgrader's --student)")
    autograde.add_argument("--workers", type=int, metavar="N", help="submissions graded at once (default: CPU count)")
    autograde.set_defaults(run=cmd_nbgrader_autograde)
    setup = _command(nbgrader_commands, "setup", common,
                     "make the course's own `nbgrader autograde` and formgrader grade through the kit's sandbox")
    setup.add_argument("--course-dir", default=".", metavar="DIR", help="the nbgrader course folder (default: .)")
    setup.set_defaults(run=cmd_nbgrader_setup)

    doctor = _command(commands, "doctor", common, "which isolation student code gets here, why, and how to improve it")
    doctor.set_defaults(run=cmd_doctor)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GraderError as error:
        print(f"autograder: error: {printable(error).replace(chr(10), ' ')}", file=sys.stderr)
        return EXIT_UNUSABLE
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("autograder: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
