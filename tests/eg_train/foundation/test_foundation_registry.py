"""The one registry every by-name choice goes through: registration, lookup, one error format."""

import pytest

from eg_train.foundation.errors import ConfigError, run_main
from eg_train.foundation.registry import Registry, UnknownNameError


def _colours() -> Registry[int]:
    reg: Registry[int] = Registry("colour")
    reg.register("red")(1)
    reg.register("blue")(2)
    return reg


def test_entries_by_name_in_registration_order():
    reg = _colours()
    assert reg["red"] == 1 and "blue" in reg and "green" not in reg
    assert reg.names() == ("red", "blue") and list(reg) == ["red", "blue"] and len(reg) == 2
    assert dict(reg) == {"red": 1, "blue": 2} and reg.get("green") is None


def test_a_name_registered_twice_is_refused_and_the_first_kept():
    reg = _colours()
    with pytest.raises(ValueError, match=r"^colour 'red' is registered twice$"):
        reg.register("red")(3)
    assert reg["red"] == 1


def test_unknown_names_share_one_message_format():
    reg = _colours()
    with pytest.raises(UnknownNameError) as err:
        reg["green"]
    assert str(err.value) == "unknown colour 'green'; registered: ['blue', 'red']"
    with pytest.raises(UnknownNameError, match=r"^unknown colour 'green', 'pink'; registered: \['blue', 'red'\]$"):
        reg.check(["red", "green", "pink"])
    with pytest.raises(UnknownNameError, match=r"^no colour given; registered"):
        reg.check([])
    reg.check(["auto", "red"], also=["auto"])  # a name accepted outside the registry
    with pytest.raises(UnknownNameError, match=r"registered: \['auto', 'blue', 'red'\]"):
        reg.check(["x"], also=["auto"])
    # A ConfigError (one line, exit 2 from every tool) that is also what a mapping lookup raises.
    assert isinstance(err.value, ConfigError) and isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_unknown_name_is_a_one_line_user_error(capsys):
    assert run_main(lambda args: _colours()["green"], "eg-tool", []) == 2
    assert capsys.readouterr().err.startswith("eg-tool: error: unknown colour 'green'; registered: ['blue', 'red']")


def test_build_calls_the_entry_and_unregister_removes_it():
    reg: Registry = Registry("builder")

    @reg.register("pair")
    def pair(a, b=0):
        return (a, b)

    assert reg.build("pair", 1, b=2) == (1, 2)
    assert reg.unregister("pair") is pair and "pair" not in reg
    with pytest.raises(UnknownNameError):
        reg.unregister("pair")


def test_the_project_registries_use_the_same_format():
    from priors.fusion import FUSIONS, NORMALISATIONS, fuse, normalise
    from priors.methods import PRIOR_REGISTRY, prior_class
    from priors.methods.cap import CAP_TRANSFORMS, resolve_transform
    from eg_train.evaluation.attacks.build import KEYWORD_ATTACKS
    from eg_train.evaluation.attacks.recipes import RECIPES

    for reg in (PRIOR_REGISTRY, NORMALISATIONS, FUSIONS, CAP_TRANSFORMS, KEYWORD_ATTACKS, RECIPES):
        assert isinstance(reg, Registry)
    with pytest.raises(UnknownNameError, match=r"^unknown prior method 'x'; registered: \['cap', 'ig', 'lime'\]$"):
        prior_class("x")
    with pytest.raises(UnknownNameError, match=r"^unknown normalisation 'x'; registered: \['l1', 'minmax', 'softmax'\]$"):
        normalise([1.0], "x")
    with pytest.raises(UnknownNameError, match=r"^unknown fusion 'x'; registered: \['max', 'mean'\]$"):
        fuse([[1.0]], "x")
    with pytest.raises(UnknownNameError, match=r"^unknown cap_transform 'x'; registered: \['auto', "):
        resolve_transform("x", "none")
