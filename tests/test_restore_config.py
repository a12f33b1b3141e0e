"""Model configs: presets are consistent, and the dict round trip is exact and strict."""

from __future__ import annotations

import json

import pytest

from restore.config import PRESETS, ConfigError, ModelConfig, model_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name: str) -> None:
    config = model_config(name)
    assert config.name == name
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_mapping_works_in_the_vae_latent(name: str) -> None:
    config = model_config(name)
    assert config.mapping.latent == config.vae.latent


def test_presets_grow_from_tiny_to_paper() -> None:
    tiny, small, paper = (model_config(n) for n in ("tiny", "small", "paper"))
    assert tiny.vae.base < small.vae.base <= paper.vae.base
    assert tiny.mapping.width < small.mapping.width < paper.mapping.width
    assert (paper.vae.latent, paper.mapping.width, paper.detector.base) == (64, 512, 64)  # the paper's widths


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"vae": {"bogus": 1}}, "config.vae: unknown key 'bogus'"),
        ({"colour": 1}, "config: unknown key 'colour'"),
        ({"vae": {"base": "wide"}}, "config.vae.base: expected a number"),
        ({"vae": {"base": 3.5}}, "config.vae.base: expected an integer"),
        ({"mapping": {"nonlocal_block": 1}}, "config.mapping.nonlocal_block: expected true or false"),
        ({"detector": []}, "config.detector: expected a table"),
    ],
)
def test_bad_configs_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        ModelConfig.from_dict(data)


def test_partial_dicts_fill_in_defaults_and_unknown_presets_fail() -> None:
    config = ModelConfig.from_dict({"name": "mine", "vae": {"latent": 16}})
    assert config.vae.latent == 16 and config.vae.base == ModelConfig().vae.base
    with pytest.raises(ConfigError, match="unknown model config 'huge'"):
        model_config("huge")
