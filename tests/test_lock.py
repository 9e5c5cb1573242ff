"""The lock is honest: it satisfies what pyproject.toml asks, on every Python it is made
for, and the environment the tests run in is exactly the lock, no more and no less.

`make lock` writes requirements/lock-pyXY.txt; `make run`/`make test` install from it.
These tests fail when someone edits pyproject.toml (or requirements/) and forgets
`make lock`, or when the environment was set up some other way (a package upgraded by
hand, a stale one left behind).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
#: the extras the lock holds (dev pulls the tests' packages; torchaudio has no release
#: that matches the locked torch, so it stays out)
LOCKED_EXTRAS = ("dev", "umap")
#: the machines the locks are made for (make lock: --python-platform)
PLATFORM = dict(sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
                os_name="posix", implementation_name="cpython",
                platform_python_implementation="CPython")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: int


def read_lock(path: Path) -> dict[str, Pin]:
    """{canonical name: pin} of a uv/pip-tools hashed lock."""
    pins: dict[str, Pin] = {}
    name = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            name = canonicalize_name(m.group(1))
            assert name not in pins, f"{path.name}: {name} pinned twice"
            pins[name] = Pin(Version(m.group(2)), 0)
        elif name is not None and (hashes := _HASH.findall(line)):
            pins[name] = Pin(pins[name].version, pins[name].hashes + len(hashes))
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"{path.name}: a line that is neither a pin nor a hash: {line!r}")
    return pins


def locks() -> dict[str, Path]:
    """{"3.11": requirements/lock-py311.txt, ...}"""
    found = {}
    for path in sorted(REQUIREMENTS.glob("lock-py3*.txt")):
        tag = path.stem.removeprefix("lock-py")
        found[f"{tag[0]}.{tag[1:]}"] = path
    return found


def environment(python: str) -> dict[str, str]:
    """Marker values on the machines a lock is made for; the running interpreter's own
    when it is that Python."""
    env = default_environment()
    if env["python_version"] != python:
        env.update(PLATFORM, python_version=python, python_full_version=f"{python}.0")
    return env


def asked() -> list[Requirement]:
    """What mmstudio asks for (pyproject.toml, with the locked extras) and what builds
    its environment (requirements/tools.in)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        lines += project["optional-dependencies"][extra]
    lines += _requirement_lines(REQUIREMENTS / "tools.in")
    return [Requirement(line) for line in lines]


def _requirement_lines(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.split("#", 1)[0].strip()]


def lock_pythons() -> set[str]:
    """The Pythons `make lock` writes a lock for (the Makefile's LOCK_PYTHONS)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.search(r"^LOCK_PYTHONS := (.+)$", makefile, re.M).group(1).split())


def test_every_python_we_lock_for_has_a_lock():
    assert lock_pythons() >= {"3.11", "3.12"}
    assert set(locks()) == lock_pythons()


def lock_problems(lock: Path, python: str) -> list[str]:
    """What pyproject.toml, tools.in and constraints.txt ask that `lock` does not give
    on `python`, and pins without a hash."""
    pins = read_lock(lock)
    env = environment(python)
    constraints = [Requirement(line)
                   for line in _requirement_lines(REQUIREMENTS / "constraints.txt")]
    problems = []
    for req in asked() + constraints:
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req}: not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req}: the lock has {pin.version}")
    problems += [f"{name}: no hash" for name, pin in pins.items() if pin.hashes == 0]
    return problems


@pytest.mark.parametrize("python", sorted(locks()))
def test_the_lock_satisfies_what_pyproject_asks(python):
    problems = lock_problems(locks()[python], python)
    assert not problems, f"run make lock ({locks()[python].name}):\n" + "\n".join(problems)


def test_a_lock_that_misses_a_range_is_caught(tmp_path):
    """The check above can fail: a pin outside pyproject's range, a missing package,
    a pin with no hash."""
    lock = locks()["3.11"].read_text(encoding="utf-8")
    bad = re.sub(r"^transformers==\S+", "transformers==4.0.0", lock, flags=re.M)
    bad = re.sub(r"^pyqtgraph==\S+", "pyqtgraph-renamed==1.0", bad, flags=re.M)
    bad = re.sub(r"^(tqdm==\S+) \\\n(    --hash=\S+ \\\n)*    --hash=\S+\n", r"\1\n", bad,
                 flags=re.M)
    path = tmp_path / "lock-py311.txt"
    path.write_text(bad, encoding="utf-8")
    problems = "\n".join(lock_problems(path, "3.11"))
    assert "transformers" in problems and "the lock has 4.0.0" in problems
    assert "pyqtgraph" in problems and "not in the lock" in problems
    assert "tqdm: no hash" in problems


def installed() -> dict[str, tuple[Version, list[str]]]:
    """{canonical name: (version, Requires-Dist lines)} of this environment, mmstudio aside."""
    dists = {canonicalize_name(d.metadata["Name"]): (Version(d.version), list(d.requires or ()))
             for d in metadata.distributions()}
    dists.pop("mmstudio", None)
    return dists


def this_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def differences(pins: dict[str, Version], have: dict[str, Version]) -> list[str]:
    return sorted(f"{name}: installed {have.get(name, '-')}, locked {pins.get(name, '-')}"
                  for name in pins.keys() | have.keys() if have.get(name) != pins.get(name))


def needed(roots: list[Requirement], dists: dict[str, tuple[Version, list[str]]],
           env: dict[str, str]) -> tuple[set[str], list[str]]:
    """The packages `roots` need through the installed packages' own requirements
    (markers and extras applied), and the requirements the installed versions miss."""
    found: set[str] = set()
    unmet = []
    stack = [(req, "mmstudio") for req in roots
             if req.marker is None or req.marker.evaluate(env)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while stack:
        req, by = stack.pop()
        name = canonicalize_name(req.name)
        version, requires = dists.get(name, (None, []))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{by} needs {req}, installed: {version or '-'}")
            continue
        found.add(name)
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e})
                                         for e in (*req.extras, "")):
                stack.append((sub, name))
    return found, unmet


def test_the_environment_is_the_lock():
    """What the tests run in is what `make test` installs: the lock for this Python,
    nothing upgraded by hand, nothing left behind (mmstudio itself aside)."""
    assert this_python() in locks(), f"no lock for Python {this_python()} (Makefile: LOCK_PYTHONS)"
    pins = {name: pin.version for name, pin in read_lock(locks()[this_python()]).items()}
    differ = differences(pins, {name: v for name, (v, _) in installed().items()})
    assert not differ, "the environment is not the lock (make test sets it up):\n" + "\n".join(
        differ)


def test_the_lock_is_what_pyproject_needs():
    """Every locked package is needed (by pyproject.toml or tools.in, through the
    installed packages' own requirements), and every requirement is met: a package
    dropped from pyproject without `make lock` leaves a stale pin, and this finds it."""
    found, unmet = needed(asked(), installed(), environment(this_python()))
    assert not unmet, "\n".join(unmet)
    stale = sorted(set(read_lock(locks()[this_python()])) - found)
    assert not stale, f"locked but needed by nothing (run make lock): {stale}"


def test_a_hand_made_environment_is_caught():
    """The two checks above can fail: an upgrade by hand, a leftover, a missing package,
    an unmet range, an extra's requirements followed only when the extra is asked."""
    v = Version
    pins = {"numpy": v("2.4.6"), "tqdm": v("4.70.1"), "torch": v("2.13.0+cpu")}
    have = {"numpy": v("2.5.0"), "tqdm": v("4.70.1"), "left-behind": v("1.0")}
    assert differences(pins, have) == ["left-behind: installed 1.0, locked -",
                                       "numpy: installed 2.5.0, locked 2.4.6",
                                       "torch: installed -, locked 2.13.0+cpu"]
    dists = {"a": (v("1.0"), ["b>=2", 'c; extra == "more"']), "b": (v("1.5"), []),
             "c": (v("1.0"), []), "d": (v("1.0"), [])}
    env = environment("3.11")
    found, unmet = needed([Requirement("a"), Requirement('x; python_version < "3.0"')],
                          dists, env)
    assert found == {"a"} and unmet == ["a needs b>=2, installed: 1.5"]  # x: not for 3.11
    found, _ = needed([Requirement("a[more]")], {**dists, "b": (v("2.0"), [])}, env)
    assert found == {"a", "b", "c"}  # d is needed by nothing: a stale pin
