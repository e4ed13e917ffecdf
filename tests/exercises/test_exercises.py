"""Grade the exercise notebooks with rlhf_lab.grader, and keep exercises and solutions in step.

    pytest tests/exercises                      # grades solutions/ (the default target)
    pytest tests/exercises --target=exercises   # grades your filled-in exercises/
"""

from __future__ import annotations

import inspect

import pytest
import torch

from rlhf_lab import losses
from rlhf_lab.diversity import distinct_n
from rlhf_lab.grader import exercise_names, grade
from rlhf_lab.sampling import best_of_n

from exercise_notebooks import GENERATOR, NOTEBOOK_NAMES, graded_functions, is_graded_cell, read_notebook

# Where each exercise lives: the notebook whose graded cells define a function of that name.
EXERCISE_NOTEBOOK = {
    function: name
    for name in NOTEBOOK_NAMES
    for function in graded_functions(GENERATOR.solution_notebook(GENERATOR.NOTEBOOKS[name]))
}
RLHF_LAB = {name: getattr(losses, name, None) for name in exercise_names()}
RLHF_LAB.update(distinct_n=distinct_n, best_of_n=best_of_n)


def test_every_graded_exercise_has_a_notebook():
    assert sorted(EXERCISE_NOTEBOOK) == sorted(exercise_names())


@pytest.mark.parametrize("exercise", exercise_names())
def test_notebook_function_passes_every_case(exercise, target):
    functions = graded_functions(read_notebook(target, EXERCISE_NOTEBOOK[exercise]))
    assert exercise in functions, f"{target}/{EXERCISE_NOTEBOOK[exercise]} does not define {exercise}()"
    report = grade(exercise, functions[exercise])
    assert report.all_passed, f"\n{report.table()}"


@pytest.mark.parametrize("exercise", exercise_names())
def test_untouched_stub_fails_every_case(exercise):
    """A grader that a stub can pass is broken: every case must fail on the generated stubs."""
    stubs = graded_functions(GENERATOR.exercise_notebook(GENERATOR.NOTEBOOKS[EXERCISE_NOTEBOOK[exercise]]))
    report = grade(exercise, stubs[exercise])
    assert report.passed == 0, f"\n{report.table()}"
    assert all("not implemented yet" in r.hint for r in report.results)


@pytest.mark.parametrize("exercise", exercise_names())
def test_solution_signature_matches_rlhf_lab(exercise):
    solutions = graded_functions(read_notebook("solutions", EXERCISE_NOTEBOOK[exercise]))
    def parameters(function):  # names, kinds and defaults (type annotations aside)
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert parameters(solutions[exercise]) == parameters(RLHF_LAB[exercise])


def _random_inputs(exercise: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=g)
    mask = (torch.rand(4, 7, generator=g) > 0.3).float()
    mask[:, 0] = 1.0
    if exercise == "masked_token_logprobs":
        return (randn(4, 7, 11) * 3, torch.randint(0, 11, (4, 7), generator=g), mask), {}
    if exercise == "bradley_terry_loss":
        return (randn(9) * 4, randn(9) * 4), {}
    if exercise == "dpo_loss":
        return tuple(randn(5) * 10 - 30 for _ in range(4)), {"beta": 0.3}
    if exercise == "kl_estimate":
        return (-randn(4, 7).abs(), -randn(4, 7).abs()), {"kind": ["k1", "k2", "k3"][seed % 3]}
    if exercise == "kl_penalized_rewards":
        return (randn(4), -randn(4, 7).abs(), -randn(4, 7).abs(), mask, 0.07), {"kind": "k2"}
    if exercise == "gae_advantages":
        return (randn(4, 7), randn(4, 7), mask), {"gamma": 0.97, "lam": 0.9}
    if exercise == "ppo_policy_loss":
        old = -randn(4, 7).abs()
        return (old + 0.3 * randn(4, 7), old, randn(4, 7), mask), {"clip_range": 0.15}
    if exercise == "ppo_value_loss":
        old = randn(4, 7)
        return (old + 0.4 * randn(4, 7), old, randn(4, 7), mask), {"clip_range_value": 0.25}
    if exercise == "leave_one_out_advantages":
        return (randn(24), [2, 3, 4][seed % 3]), {}
    if exercise == "group_relative_advantages":
        return (randn(24), [2, 3, 4][seed % 3]), {"scale": seed != 1}
    raise KeyError(exercise)


TENSOR_EXERCISES = [e for e in exercise_names() if e not in ("distinct_n", "best_of_n")]


@pytest.mark.parametrize("exercise", TENSOR_EXERCISES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solution_agrees_with_rlhf_lab_on_random_inputs(exercise, seed):
    """One truth: the worked solution and rlhf_lab's implementation give the same numbers."""
    solution = graded_functions(read_notebook("solutions", EXERCISE_NOTEBOOK[exercise]))[exercise]
    args, kwargs = _random_inputs(exercise, seed)
    ours = RLHF_LAB[exercise](*[a.clone() if torch.is_tensor(a) else a for a in args], **kwargs)
    theirs = solution(*[a.clone() if torch.is_tensor(a) else a for a in args], **kwargs)
    ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(torch.as_tensor(b).float(), torch.as_tensor(a).float(), atol=1e-5, rtol=1e-5)


def test_text_solutions_agree_with_rlhf_lab():
    solutions = {}
    for exercise in ("distinct_n", "best_of_n"):
        solutions.update(graded_functions(read_notebook("solutions", EXERCISE_NOTEBOOK[exercise])))
    texts = ["a b a b c", "b c d", "", "x", "a b a b c"]
    for n in (1, 2, 3, 4):
        assert solutions["distinct_n"](texts, n) == distinct_n(texts, n)
    from rlhf_lab.grading_cases.text import FakePolicy, fake_score

    prompts = [f"prompt {i}" for i in range(5)]
    for n in (1, 3, 6):
        assert (solutions["best_of_n"](prompts, FakePolicy().generate, fake_score, n)
                == best_of_n(prompts, FakePolicy().generate, fake_score, n))


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_exercises_and_solutions_stay_in_step(name):
    """Same cells in the same order; only the graded cells may differ, and only in their body."""
    exercises, solutions = read_notebook("exercises", name), read_notebook("solutions", name)
    assert len(exercises.cells) == len(solutions.cells)
    for ex, sol in zip(exercises.cells, solutions.cells):
        assert (ex.cell_type, ex.get("id"), ex.metadata.get("tags", [])) == (
            sol.cell_type, sol.get("id"), sol.metadata.get("tags", []))
        if is_graded_cell(sol):
            assert is_graded_cell(ex), f"{name}: cell {sol.id} is graded in solutions but not in exercises"
            ex_defs = [line for line in ex.source.splitlines() if line.startswith("def ")]
            sol_defs = [line for line in sol.source.splitlines() if line.startswith("def ")]
            assert ex_defs == sol_defs, f"{name}: the function signatures of cell {sol.id} differ"
        else:
            assert ex.source == sol.source, f"{name}: cell {sol.id} differs between exercises and solutions"


def cell_contents(notebook) -> list[tuple]:
    return [(c.cell_type, c.get("id"), c.metadata.get("tags", []), c.source) for c in notebook.cells]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_solution_notebooks_agree_with_their_sources(name):
    """solutions/NN_name.py is the source of truth; the notebook beside it must say the same."""
    generated = GENERATOR.solution_notebook(GENERATOR.NOTEBOOKS[name])
    assert cell_contents(read_notebook("solutions", name)) == cell_contents(generated), (
        f"solutions/{name} differs from its source {GENERATOR.NOTEBOOKS[name].name}: run "
        "`python tools/make_exercises.py` (after editing the notebook in JupyterLab, save it first: "
        "jupytext rewrites the source).")


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_exercises_are_what_the_script_makes_of_the_solutions(name, target):
    """exercises/ is generated from the solution sources; an edit by hand would drift."""
    generated = GENERATOR.exercise_notebook(GENERATOR.NOTEBOOKS[name])
    on_disk = read_notebook("exercises", name)
    assert [c.outputs for c in on_disk.cells if c.cell_type == "code"] == [[]] * sum(
        c.cell_type == "code" for c in on_disk.cells), f"exercises/{name} should have no outputs"
    for disk, gen in zip(cell_contents(on_disk), cell_contents(generated), strict=True):
        if target == "exercises" and GENERATOR.SOLUTION_TAG in gen[2]:
            continue  # the learner's own answer, graded by the tests above
        assert disk == gen, (
            f"exercises/{name} cell {gen[1]} differs from what tools/make_exercises.py makes of "
            f"solutions/{GENERATOR.NOTEBOOKS[name].name}: regenerate with `python tools/make_exercises.py` "
            "(or, if you filled in the exercises, grade them with `pytest tests/exercises --target=exercises`).")


def test_every_marked_region_becomes_a_stub():
    """Each BEGIN/END SOLUTION region is in a graded cell and turns into one NotImplementedError."""
    for name, source in GENERATOR.NOTEBOOKS.items():
        solution, exercise = GENERATOR.solution_notebook(source), GENERATOR.exercise_notebook(source)
        for sol, ex in zip(solution.cells, exercise.cells):
            regions = sol.source.count("### BEGIN SOLUTION")
            assert regions == sol.source.count("### END SOLUTION"), f"{name} cell {sol.id}: unbalanced markers"
            assert regions == 0 or is_graded_cell(sol), f"{name} cell {sol.id}: markers outside a graded cell"
            assert "### BEGIN SOLUTION" not in ex.source and "### END SOLUTION" not in ex.source
            assert ex.source.count("raise NotImplementedError(") == sol.source.count("raise NotImplementedError(") + regions
            if is_graded_cell(sol):
                assert regions >= 1, f"{name} cell {sol.id} is graded but marks no solution"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_shows_difficulty_and_checks_each_exercise(name):
    notebook = read_notebook("solutions", name)
    assert "**Difficulty:** ★" in notebook.cells[0].source
    functions = graded_functions(notebook)
    sources = "\n".join(c.source for c in notebook.cells if c.cell_type == "code" and not is_graded_cell(c))
    for function in functions:
        if function in exercise_names():
            assert f"check({function})" in sources, f"{name} never checks {function}"
