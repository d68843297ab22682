"""The collector settings the long-running components start with (projections.gc_tuning)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_tuning_raises_the_young_threshold_and_freezes_what_start_up_made() -> None:
    # In a fresh interpreter: the test process's own collector stays as it was.
    probe = (
        "import gc; from projections.gc_tuning import THRESHOLDS, tune_gc; "
        "before = gc.get_threshold(); tune_gc(); "
        "print(before != THRESHOLDS, gc.get_threshold() == THRESHOLDS, gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"]
