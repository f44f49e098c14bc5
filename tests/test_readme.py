"""The README's real-video tables are the committed results, not numbers typed by hand: the block
between its `rpmnet ablate ... --markdown` markers is what that command prints for the committed
cells (skipped, saying so, without ../shared/davis2016, whose content id makes a cell current)."""
import re

import pytest

from rpmnet.config import REPO
from rpmnet.data import sources
from rpmnet.experiment import Experiment

PROFILE = "cpu-davis-fair"
BLOCK = re.compile(r"<!-- rpmnet ablate --profile (\S+) --markdown -->\n(.*?)\n<!-- end -->", re.S)


def test_the_readme_has_the_real_video_block():
    blocks = dict(BLOCK.findall((REPO / "README.md").read_text()))
    assert PROFILE in blocks and blocks[PROFILE].startswith("| method | J | F | J&F [95% CI]")


@pytest.mark.skipif(not sources.SHARED_DAVIS2016.is_dir(),
                    reason=f"{sources.SHARED_DAVIS2016} is absent: the committed real-video cells cannot be checked")
def test_the_readme_table_is_what_the_committed_cells_give():
    blocks = dict(BLOCK.findall((REPO / "README.md").read_text()))
    exp = Experiment(PROFILE, sources.SHARED_DAVIS2016, results_root=REPO / "results")
    assert blocks[PROFILE] == exp.markdown(), (
        f"README.md is stale: paste the output of `rpmnet ablate --profile {PROFILE} --markdown "
        f"--davis-root ../shared/davis2016` between its markers")
