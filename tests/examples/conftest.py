"""Make the examples importable by their tests, as running an example script does.

``python examples/demo/run_demo.py`` puts the script's folder on ``sys.path``, which is how the
demo finds its package ``anchor_demo``; the examples are not installed with the library. The
tests under ``tests/examples/demo/`` import ``anchor_demo`` the same way, from the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO = EXAMPLES / "demo"

if str(DEMO) not in sys.path:
    sys.path.insert(0, str(DEMO))
