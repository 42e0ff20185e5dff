"""constraints.txt, the exact versions ``make install`` uses: every line an exact pin, every
non-GPU requirement of setup.py pinned inside its range, torch left to the Makefile."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+\-]*)$")


def _pins() -> dict[str, Version]:
    pins = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt line {number} is not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = Version(match.group(2))
    return pins


def _setup_requirements() -> list[Requirement]:
    namespace = {}  # setup.py's requirement lists are literals: read them without running setup()
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("INSTALL_REQUIRES", "EXTRAS_REQUIRE"):
                namespace[node.targets[0].id] = ast.literal_eval(node.value)
    extras = [item for key, items in namespace["EXTRAS_REQUIRE"].items() if key != "gpu" for item in items]
    return [Requirement(item) for item in [*namespace["INSTALL_REQUIRES"], *extras]]


def test_every_line_is_an_exact_pin_and_torch_is_left_to_the_makefile() -> None:
    pins = _pins()
    assert "torch" not in pins
    assert pins, "constraints.txt pins nothing"


@pytest.mark.parametrize("requirement", _setup_requirements(), ids=str)
def test_setup_requirements_are_pinned_within_their_ranges(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    if name == "torch":
        return
    pins = _pins()
    assert name in pins, f"constraints.txt does not pin {name} (setup.py requires {requirement})"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {name}=={pins[name]} outside setup.py's {requirement.specifier}")
