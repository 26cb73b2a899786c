"""Hidden tests tell right from wrong, graded through the real batch autograde path.

One session-scoped grading run (``acc_course`` in conftest.py) covers every
mutant, every correct variant and the credit-isolation submissions (the same
run ``make accuracy`` reports on).
"""

from __future__ import annotations

import re

import pytest

from cnngrader.core import spec
from cnngrader.tools import accuracy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def result(acc_course):
    return accuracy.evaluate(acc_course)


def test_catalogue_sizes():
    assert len(accuracy.mutant_files()) >= 40
    assert len(accuracy.variant_files()) >= 10


@pytest.mark.parametrize("mutant", [p.stem for p in accuracy.mutant_files()])
def test_mutant_loses_points_on_its_own_function_only(result, mutant):
    fn = mutant.split("__")[0]
    assert mutant in result.caught[fn], f"{mutant} was not caught"
    assert mutant not in result.collateral, f"{mutant} cost points in {result.collateral.get(mutant)}"


@pytest.mark.parametrize("variant", [p.stem for p in accuracy.variant_files()])
def test_correct_variant_gets_full_marks(result, variant):
    assert variant in result.variants_full, f"{variant}: {result.variants_short.get(variant)}"


@pytest.mark.parametrize("name", sorted(accuracy.isolation()))
def test_credit_isolation(result, acc_course, name):
    assert result.isolation[name]
    scores = acc_course.scores()[name]
    for mutant in accuracy.isolation()[name]["mutants"]:
        assert scores[mutant.split("__")[0]] < spec.load().function_points()[mutant.split("__")[0]]


WORDING = {
    "conv_forward__stride_forgotten": "stride > 1",
    "conv_backward__unpad_negative_index": "pad = 0",
    "pool_backward__max_assign_not_add": "overlapping windows (stride < f)",
    "conv_forward__caches_padded_input": "cache must hold the unpadded input",
    "conv_backward__dW_last_example": "gradient check on dW failed (relative error",
    "conv_forward__size_without_pad": "output shape",
    "conv_single_step__returns_array": "return a single number",
}


@pytest.mark.parametrize("mutant, phrase", sorted(WORDING.items()))
def test_failure_messages_name_the_property(acc_course, mutant, phrase):
    record = acc_course.records()[f"m__{mutant}"]
    messages = record.messages()
    assert any(phrase in m for m in messages), messages
    # No hidden expected value is ever printed: only shapes, counts and one rounded difference.
    for m in messages:
        assert not re.search(r"\d\.\d{4,}", m), m


#: Bugs that belong to one property, and the points that property's cells are worth.
ONE_CHARGE = {
    "conv_backward__unpad_negative_index": ("test_conv_backward_pad0",),
    "conv_backward__stride_forgotten": ("test_conv_backward_stride",),
    "conv_backward__dA_assign_not_add": ("test_conv_backward_dA",),
    "conv_backward__db_last_example": ("test_conv_backward_dW_db",),
    "conv_forward__stride_forgotten": ("test_conv_forward_stride",),
    "conv_forward__bias_forgotten": ("test_conv_forward_channels",),
    "conv_forward__caches_padded_input": ("test_conv_forward_cache",),
    "pool_forward__stride_forgotten": ("test_pool_forward_stride",),
    "pool_forward__mode_ignored": ("test_pool_forward_average",),
    "pool_forward__caches_output": ("test_pool_forward_cache",),
    "pool_backward__max_assign_not_add": ("test_pool_backward_overlap",),
    "pool_backward__average_assign_not_add": ("test_pool_backward_overlap",),
}


@pytest.mark.parametrize("mutant, cells", sorted(ONE_CHARGE.items()))
def test_one_bug_costs_its_own_property_once(acc_course, mutant, cells):
    record = acc_course.records()[f"m__{mutant}"]
    failed = sorted(gid for gid, cell in record.cells.items() if not cell.passed)
    assert failed == sorted(cells)
