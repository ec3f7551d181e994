"""signature_problem: the one check of a dependency's private function against the parameters kubepipe passes
(gx_runtime, kserve_pins, the kfp.local fixes, kubepipe's kfp.Client)."""

import itertools

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from kubepipe.dependency_pins import changed, signature_problem


def takes(a, b, c=None):
    return a, b, c


def test_the_parameters_kubepipe_passes_are_no_problem():
    assert signature_problem(takes, ["a", "b", "c"]) is None
    assert signature_problem(takes, ["a", "b"], match="prefix") is None
    assert signature_problem(takes, ["c", "a"], match="includes") is None


def test_an_extra_parameter_fails_an_exact_match_only():
    assert signature_problem(takes, ["a", "b"]) == "now takes (a, b, c), not (a, b)"
    assert signature_problem(takes, ["a", "b"], match="prefix") is None
    assert signature_problem(takes, ["b"], match="includes") is None


def test_a_missing_or_moved_parameter_is_named():
    assert signature_problem(takes, ["a", "b", "c", "d"]) == "now takes (a, b, c), not (a, b, c, d)"
    assert signature_problem(takes, ["b", "a"], match="prefix") == "now takes (a, b, c), not (b, a, ...)"
    assert signature_problem(takes, ["a", "d", "e"], match="includes") == "now takes (a, b, c), no d or e"


def test_a_bound_method_is_read_as_it_is_called_without_self():
    class Api:
        def request(self, method, url):
            return method, url

    assert signature_problem(Api().request, ["_request_timeout"], match="includes") == \
        "now takes (method, url), no _request_timeout"
    assert signature_problem(Api.request, ["self", "method"], match="prefix") is None


@pytest.mark.parametrize("gone", [None, 3, "takes"])
def test_what_is_not_callable_is_gone(gone):
    assert signature_problem(gone, ["a"]) == "is gone"
    assert signature_problem(gone, ["a"], match="includes") == "is gone"


def test_a_function_without_a_readable_signature_says_so():
    problem = signature_problem(_NoSignature(), ["a"])
    assert problem is not None and problem.startswith("has no signature to check (")


def test_an_unknown_match_is_a_programming_error():
    with pytest.raises(ValueError, match=r"match='suffix', not 'exact', 'prefix' or 'includes'"):
        signature_problem(takes, ["a"], match="suffix")  # type: ignore[arg-type]


class _NoSignature:
    """A callable inspect cannot read (as some C functions)."""

    @property
    def __signature__(self):
        raise ValueError("no signature found")

    def __call__(self, *args):
        return args


def test_a_changed_dependency_within_the_declared_range_is_told_an_install_that_changes_something(monkeypatch):
    """kserve 0.21.3 (within kserve>=0.21,<0.22) that moved an internal was told 'Install the kserve version kubepipe
    declares (pip install 'kserve>=0.21,<0.22')': already installed, pip changed nothing."""
    from kubepipe import dependency_pins

    monkeypatch.setattr(dependency_pins, "installed", lambda package: "0.21.3+cpu")
    assert changed("kubepipe serve cannot run on", "kserve", "X is gone", "kserve>=0.21,<0.22") == (
        "kubepipe serve cannot run on kserve 0.21.3+cpu: X is gone. kserve 0.21.3+cpu is within the range kubepipe "
        "declares (kserve>=0.21,<0.22) yet changed this: install an earlier release (pip install "
        "'kserve>=0.21,<0.22,<0.21.3') or upgrade kubepipe")


@pytest.mark.parametrize("have, declared", [("0.20.1", "kserve>=0.21,<0.22"), ("2.17.3", "kfp==2.17.3"),
                                            ("(not installed)", "kserve>=0.21,<0.22")])
def test_a_dependency_outside_the_range_or_pinned_exactly_is_told_to_install_what_kubepipe_declares(
        monkeypatch, have, declared):
    from kubepipe import dependency_pins

    monkeypatch.setattr(dependency_pins, "installed", lambda package: have)
    assert changed("h", "pkg", "why", declared) == (
        f"h pkg {have}: why. Install the pkg version kubepipe declares (pip install '{declared}') or upgrade kubepipe")


def test_a_requirement_with_an_environment_marker_is_told_an_install_pip_accepts(monkeypatch):
    """`pkg>=1; python_version<"3.12"` was told pip install 'pkg>=1; python_version<"3.12",<1.3.0': the new bound
    landed in the marker, which pip refuses (Invalid requirement)."""
    from packaging.requirements import Requirement

    from kubepipe import dependency_pins

    monkeypatch.setattr(dependency_pins, "installed", lambda package: "1.3.0")
    text = changed("h", "pkg", "why", 'pkg[fast]>=1; python_version < "3.12"')
    told = text.split("pip install '")[-1].split("')")[0]
    assert told == 'pkg[fast]>=1,<1.3.0; python_version < "3.12"'
    assert str(Requirement(told).marker) == 'python_version < "3.12"'


_VERSIONS = st.builds(lambda parts, pre: ".".join(map(str, parts)) + pre,
                      st.lists(st.integers(0, 4), min_size=1, max_size=3),
                      st.sampled_from(["", "", "rc1", ".post1", "+cpu"]))
_PREFIXES = st.builds(lambda parts: ".".join(map(str, parts)) + ".*", st.lists(st.integers(0, 4), min_size=1, max_size=3))
_SPECIFIERS = st.lists(st.one_of(st.tuples(st.sampled_from([">=", ">", "<", "<=", "!=", "~=", "=="]), _VERSIONS),
                                 st.tuples(st.just("!="), _PREFIXES)), max_size=4)
# Every version of up to 4 parts 0-5 (one more part, and one more in a part, than _VERSIONS writes), final, pre-,
# post- and dev releases: where the declared range holds a version below the installed one, it holds one of these
_GRID = [Version(f"{'.'.join(map(str, parts))}{suffix}") for n in range(1, 5)
         for parts in itertools.product(range(6), repeat=n) for suffix in ("", "rc1", ".post1", ".post2", ".dev0")]
_MARKERS = st.sampled_from(["", 'python_version < "3.12"', "sys_platform == 'linux' and extra == 'serve'"])


@settings(max_examples=300, deadline=None)
@example(name="pkg", extras="", specifiers=[(">=", "1.0"), ("!=", "1.0.*"), ("<", "2")], marker="", have="1.1",
         probes=[])  # `!=1.0.*` leaves nothing of `>=1.0` below 1.1 (was told 'pkg>=1.0,!=1.0.*,<2,<1.1')
@example(name="pkg", extras="", specifiers=[("!=", "0.*"), ("<", "2")], marker="", have="1.0", probes=[])
@given(name=st.sampled_from(["pkg", "Some_Pkg.x"]), extras=st.sampled_from(["", "[a]", "[b,a]"]),
       specifiers=_SPECIFIERS, marker=_MARKERS, have=_VERSIONS, probes=st.lists(_VERSIONS, max_size=8))
def test_the_earlier_release_range_is_the_declared_one_below_the_installed_version(
        name, extras, specifiers, marker, have, probes):
    """Against packaging: the range told is a requirement pip parses, with the declared name, extras and marker,
    whose versions are exactly the declared range's below the installed one (SpecifierSet intersection); none is
    told for an exact pin or a version outside the range."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    from kubepipe.dependency_pins import _earlier

    declared = name + extras + ",".join(op + v for op, v in specifiers) + (f"; {marker}" if marker else "")
    try:
        req = Requirement(declared)
    except (InvalidRequirement, InvalidSpecifier):  # '~=1' or '>=1+cpu': not a range pip takes either
        assume(False)
    told = _earlier(declared, have)
    installed = Version(have)
    if any(op == "==" for op, _ in specifiers) or not req.specifier.contains(installed, prereleases=True):
        assert told is None
        return
    assert told is not None
    # below it, as '<installed' takes it: a pre-release of its own release is not (PEP 440)
    oracle = req.specifier & SpecifierSet(f"<{installed.base_version}")
    held = list(oracle.filter(_GRID, prereleases=True))
    # the earliest the range allows, its `!=` exclusions (`!=1.0.*`) minded: none of it lies below, and the reverse
    assert (told == "") == (not held), (told, held[:5])
    if told == "":
        return
    got = Requirement(told)
    assert (got.name, got.extras, str(got.marker)) == (req.name, req.extras, str(req.marker))
    for probe in [*map(Version, [*probes, have]), *held[:20]]:
        assert got.specifier.contains(probe, prereleases=True) == oracle.contains(probe, prereleases=True), probe


def test_a_range_whose_exclusions_leave_nothing_below_the_installed_release_is_told_to_upgrade_kubepipe(monkeypatch):
    """pkg>=1.0,!=1.0.*,<2 at 1.1 was told pip install 'pkg>=1.0,!=1.0.*,<2,<1.1': `!=1.0.*` leaves none of the range
    below 1.1, so pip answers ResolutionImpossible; it is the earliest release the range allows."""
    from kubepipe import dependency_pins

    monkeypatch.setattr(dependency_pins, "installed", lambda package: "1.1")
    for declared in ("pkg>=1.0,!=1.0.*,<2", "pkg!=0.*,!=1.0.*,<2"):
        assert changed("h", "pkg", "why", declared).endswith(
            f"pkg 1.1 is the earliest release the range kubepipe declares ({declared}) allows, yet changed this: no "
            "release kubepipe supports is without the change; upgrade kubepipe")
    assert changed("h", "pkg", "why", "pkg>=1.0,!=1.0.1,<2").endswith(  # 1.0 is still below
        "install an earlier release (pip install 'pkg>=1.0,!=1.0.1,<2,<1.1') or upgrade kubepipe")


def test_the_earliest_release_of_the_range_is_told_to_upgrade_kubepipe_not_to_install_an_empty_range(monkeypatch):
    """kserve 0.21.0 (the first of kserve>=0.21,<0.22) that moved an internal was told pip install
    'kserve>=0.21,<0.22,<0.21.0', which no release satisfies (pip: ResolutionImpossible)."""
    from kubepipe import dependency_pins

    monkeypatch.setattr(dependency_pins, "installed", lambda package: "0.21.0")
    assert changed("h", "kserve", "X is gone", "kserve>=0.21,<0.22") == (
        "h kserve 0.21.0: X is gone. kserve 0.21.0 is the earliest release the range kubepipe declares "
        "(kserve>=0.21,<0.22) allows, yet changed this: no release kubepipe supports is without the change; "
        "upgrade kubepipe")
