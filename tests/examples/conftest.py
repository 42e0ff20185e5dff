"""Make the examples importable by their tests, as running an example script does.

``python examples/demo/run_demo.py`` puts the script's folder on ``sys.path``, which is how the
demo finds its package ``anchor_demo``; ``examples/reproduce_small/build_suite.py`` does the same
for ``repro_small`` and also adds ``examples/demo``, whose data helpers it reuses. The examples
are not installed with the library. The tests under ``tests/examples/`` import both packages the
same way, from the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "demo"
REPRODUCE_SMALL = EXAMPLES / "reproduce_small"

for folder in (REPRODUCE_SMALL, DEMO):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
