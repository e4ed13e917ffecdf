"""Instant feedback for the exercises: ``check(my_dpo_loss)``.

Each exercise has a list of cases. A case calls the learner's function and compares what
comes back with one of:

- ``golden``: numbers computed once by rlhf_lab's own implementation and stored in
  ``rlhf_lab/grading_cases/golden.json`` (regenerate with ``python tools/make_golden.py``);
- ``invariant``: a property the right answer must have (DPO loss is log 2 when the policy
  equals the reference, ...);
- ``trl``: TRL's own code run on the same tensors;
- ``formula``: an independent textbook formula, where TRL has no callable equivalent.

A failing case shows a hint, never the solution. A function that raises (a stub still
raising NotImplementedError included) fails every case.

Usage in a notebook::

    from rlhf_lab.grader import check
    check(dpo_loss)                 # the exercise is found from the function's name
    check("dpo_loss", my_function)  # or named explicitly
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rlhf_lab.grading_cases import EXERCISES, Case, CaseFailed


@dataclass(frozen=True)
class CaseResult:
    name: str
    kind: str
    passed: bool
    hint: str = ""
    seconds: float = 0.0


@dataclass
class GradeReport:
    """What check() found: one row per case. Shows itself as a table in a notebook."""

    exercise: str
    results: list[CaseResult] = field(default_factory=list)
    _shown_by_check: bool = field(default=False, repr=False, compare=False)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.failed == 0

    def summary(self) -> str:
        if self.all_passed:
            return f"{self.exercise}: all {len(self.results)} cases passed. Well done!"
        return f"{self.exercise}: {self.passed} of {len(self.results)} cases passed, {self.failed} failed."

    def table(self) -> str:
        """The report as plain text: one line per case, hints indented under failures."""
        lines = [self.summary()]
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            lines.append(f"  {mark}  {r.kind:<9}  {r.name}")
            if not r.passed:
                lines.append(f"        hint: {r.hint}")
        return "\n".join(lines)

    def require(self) -> None:
        """Raise unless every case passed: call it before plugging the function into the pipeline."""
        if not self.all_passed:
            raise RuntimeError(
                f"{self.summary()} Make every case pass (see the table above) before plugging "
                f"{self.exercise} into the pipeline."
            )

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        rows = []
        for r in self.results:
            colour = "#1a7f37" if r.passed else "#cf222e"
            mark = "&#10004; pass" if r.passed else "&#10008; fail"
            hint = "" if r.passed else html.escape(r.hint)
            rows.append(
                f"<tr><td style='color:{colour};font-weight:bold;white-space:nowrap'>{mark}</td>"
                f"<td>{html.escape(r.kind)}</td><td style='text-align:left'>{html.escape(r.name)}</td>"
                f"<td style='text-align:left'>{hint}</td></tr>"
            )
        return (
            f"<p><b>{html.escape(self.summary())}</b></p>"
            "<table><thead><tr><th>result</th><th>kind</th><th style='text-align:left'>case</th>"
            "<th style='text-align:left'>hint</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )

    def _ipython_display_(self):
        # check() has just shown this table; a cell ending in check(...) would show it twice.
        if self._shown_by_check:
            self._shown_by_check = False
            return
        from IPython.display import display

        display({"text/plain": self.table(), "text/html": self._repr_html_()}, raw=True)


def exercise_names() -> list[str]:
    return list(EXERCISES)


def _exercise_for(function: Callable) -> str:
    name = getattr(function, "__name__", "")
    for candidate in (name, name.removeprefix("my_")):
        if candidate in EXERCISES:
            return candidate
    raise ValueError(
        f"check() cannot tell which exercise the function {name!r} is for. Name it after the "
        f"exercise, or say it: check('dpo_loss', {name or 'my_function'}). "
        f"Exercises: {', '.join(EXERCISES)}."
    )


def run_case(case: Case, function: Callable) -> CaseResult:
    """Run one case; any exception from the learner's function is a failure with a hint."""
    start = time.perf_counter()
    try:
        case.run(function)
        passed, hint = True, ""
    except NotImplementedError:
        passed, hint = False, "not implemented yet: replace `raise NotImplementedError` with your code."
    except CaseFailed as failure:
        passed, hint = False, str(failure)
    except Exception as error:  # the learner's code crashed: say where, not how to fix it
        passed, hint = False, f"your function raised {type(error).__name__}: {error}"
    return CaseResult(case.name, case.kind, passed, hint, time.perf_counter() - start)


def grade(exercise: str, function: Callable) -> GradeReport:
    """Run every case of ``exercise`` on ``function`` and return the report (prints nothing)."""
    if exercise not in EXERCISES:
        raise ValueError(f"Unknown exercise {exercise!r}. Exercises: {', '.join(EXERCISES)}.")
    if not callable(function):
        raise TypeError(f"check({exercise!r}, ...) needs a function, got {type(function).__name__}.")
    return GradeReport(exercise, [run_case(case, function) for case in EXERCISES[exercise]])


def check(exercise_or_function, function: Callable | None = None, *, quiet: bool = False) -> GradeReport:
    """Grade a function and show a table of passed and failed cases, with a hint per failure.

    ``check(dpo_loss)`` finds the exercise from the function's name (a ``my_`` prefix is
    fine); ``check("dpo_loss", fn)`` names it. Returns a GradeReport with ``passed``,
    ``failed`` and ``all_passed``.
    """
    if function is None:
        function = exercise_or_function
        exercise = _exercise_for(function)
    else:
        exercise = exercise_or_function
    report = grade(exercise, function)
    if not quiet:
        _show(report)
    return report


def _show(report: GradeReport) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None:
        print(report.table())
        return
    from IPython.display import display

    display({"text/plain": report.table(), "text/html": report._repr_html_()}, raw=True)
    # If the cell ends with check(...), IPython would display the returned report again.
    # Skip that one display; the flag is cleared when the cell finishes, so `report` in a
    # later cell still shows the table.
    report._shown_by_check = True

    def clear_flag(*_):
        report._shown_by_check = False
        shell.events.unregister("post_run_cell", clear_flag)

    shell.events.register("post_run_cell", clear_flag)
