from __future__ import annotations

from dataclasses import dataclass

import pytest

from seqspeech.config import apply_overrides, from_mapping, load_yaml, to_mapping
from seqspeech.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    width: int = 4
    rates: tuple[float, ...] = (0.9, 1.0)


@dataclass(frozen=True)
class Outer:
    name: str
    lr: float = 1e-3
    inner: Inner = Inner()
    extra: Inner | None = None
    flag: bool = False

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


def test_builds_nested_and_round_trips():
    cfg = from_mapping(Outer, {"name": "x", "lr": 1, "inner": {"width": 8, "rates": [1.1]}, "extra": None})
    assert cfg == Outer(name="x", lr=1.0, inner=Inner(width=8, rates=(1.1,)))
    assert isinstance(cfg.lr, float)
    assert from_mapping(Outer, to_mapping(cfg)) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "lrr": 1.0}, "recipe: unknown key 'lrr'"),
        ({"name": "x", "inner": {"widht": 3}}, "recipe.inner: unknown key 'widht'"),
        ({}, "missing required key 'name'"),
        ({"name": "x", "lr": "fast"}, "recipe.lr: expected a number"),
        ({"name": "x", "inner": {"width": 2.5}}, "recipe.inner.width: expected an integer"),
        ({"name": "x", "flag": "yes"}, "recipe.flag: expected true or false"),
        ({"name": "x", "lr": -1.0}, "lr must be positive"),
        ({"name": "x", "inner": [1]}, "expected a mapping"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        from_mapping(Outer, data, "recipe")


def test_overrides_parse_yaml_values():
    data = apply_overrides({"name": "x", "inner": {"width": 2}}, ["inner.width=16", "lr=3e-4", "extra.rates=[1, 2]"])
    cfg = from_mapping(Outer, data)
    assert cfg.inner.width == 16 and cfg.lr == pytest.approx(3e-4) and cfg.extra == Inner(rates=(1.0, 2.0))
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="'name' is not a mapping"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_load_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe file \(YAML\) not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(listy)
    good = tmp_path / "good.yaml"
    good.write_text("name: x\ninner: {width: 3}\n")
    assert from_mapping(Outer, load_yaml(good)).inner.width == 3
