"""write_hf_weights under SIGKILL: at every point the old or the new weights are there.

The weight write used to delete the old folder before renaming the new one in (a kill between
left no weights) and used a fixed ``<name>.tmp`` temp that nothing swept.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow  # a fresh process imports torch and transformers (~5-15 s)
def test_sigkill_at_each_point_of_a_weight_write_leaves_complete_weights(tmp_path) -> None:
    from tests.publish_kill import check

    cases = check("weights", tmp_path)
    assert {c["point"] for c in cases} == {"started", "filled", "swapped", "aside", "placed"}
