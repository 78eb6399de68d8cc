"""Engine.export under SIGKILL: at every point of the publish the old or the new export is there.

The export used to delete the old folder before renaming the new one in: a kill between the two
left no model at all.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow  # a fresh process imports torch and transformers (~5-15 s)
def test_sigkill_at_each_point_of_an_export_leaves_a_complete_model(tmp_path) -> None:
    from tests.publish_kill import check

    cases = check("export", tmp_path)
    assert {c["point"] for c in cases} == {"started", "filled", "swapped", "aside", "placed"}
