"""The dependency lock: `make` installs from it, it covers pyproject.toml, the venv matches it.

Issue 14 finding 9: without a lock, `>=` ranges let a fresh machine resolve another set.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _locked() -> dict[str, tuple[str, str | None]]:
    """Locked name -> (version, environment marker or None)."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = PINNED.match(line)
        if match:
            name, version, marker = match.groups()
            pins[canonicalize_name(name)] = (version, marker)
    return pins


def _declared() -> list[Requirement]:
    """The runtime dependencies and every optional extra, the project's own extras left out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts += extra
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if canonicalize_name(r.name) != project["name"]]


def _recipe(makefile: str, target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, f"the Makefile has no rule for {target}"
    return match.group(0)


def test_make_installs_from_the_lock_and_reinstalls_when_it_changes() -> None:
    """Issue 14 finding 9: the install stamp depends on the lock and installs it as it is."""
    # given the Makefile
    makefile = (ROOT / "Makefile").read_text()

    # when its install rule is read
    rule = _recipe(makefile, "$(STAMP)")

    # then it depends on the lock, installs it, and adds the project without resolving again
    assert "LOCK := requirements.lock" in makefile, "the Makefile names requirements.lock"
    assert "$(LOCK)" in rule.splitlines()[0], "a changed lock must rebuild the venv stamp"
    assert "-r $(LOCK)" in rule, "the venv is installed from the lock"
    assert "--no-deps -e ." in rule, "the project goes in without re-resolving its ranges"
    assert re.search(r"-e '?\.\[", rule) is None, "no install from pyproject ranges"
    assert re.search(r"uv==\$\(UV_VERSION\)", rule), "uv itself is pinned"
    assert "uv pip compile" in _recipe(makefile, "lock"), "`make lock` refreshes the lock"


def test_the_lock_covers_every_declared_dependency() -> None:
    """Issue 14 finding 9: each pyproject dependency is locked at a version its range allows."""
    # given the lock and the dependencies pyproject.toml declares
    locked = _locked()
    declared = _declared()
    assert len(declared) > 20, "pyproject.toml was read"

    # then each is pinned, every pin has hashes, and the pin satisfies the declared range
    missing = [str(r) for r in declared if canonicalize_name(r.name) not in locked]
    assert not missing, f"not in {LOCK.name}: {missing}; run `make lock`"
    outside = [
        f"{r} (locked {locked[canonicalize_name(r.name)][0]})"
        for r in declared
        if not r.specifier.contains(locked[canonicalize_name(r.name)][0], prereleases=True)
    ]
    assert not outside, f"locked versions outside pyproject ranges: {outside}; run `make lock`"
    requirements = [line for line in LOCK.read_text().splitlines() if line[:1].isalnum()]
    loose = [line for line in requirements if not PINNED.match(line)]
    assert not loose, f"requirements of the lock that are not exact pins: {loose}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    unhashed = [
        b.split()[0] for b in blocks if PINNED.match(b.splitlines()[0]) and "--hash" not in b
    ]
    assert not unhashed, f"pins without hashes: {unhashed}; run `make lock`"


def test_the_installed_versions_equal_the_lock() -> None:
    """Issue 14 finding 9: what `make` installed is what the lock says (for this platform)."""
    # given the pins that apply to this interpreter and platform
    applicable = {
        name: version
        for name, (version, marker) in _locked().items()
        if marker is None or Marker(marker).evaluate()
    }

    # when the installed distributions are read
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}

    # then each locked package is installed at its locked version
    wrong = {
        name: (version, installed.get(name))
        for name, version in applicable.items()
        if installed.get(name) != version
    }
    assert not wrong, f"locked vs installed: {wrong}; run `make .venv/.installed` (or `make test`)"
