"""Configs load from YAML, TOML and JSON; mistakes become one line per problem naming the field."""

import json

import pytest

from mcnn.config_io import ConfigError, load_config, read_mapping, save_config
from mcnn.models import ModelConfig


@pytest.mark.parametrize("name, text", [
    ("m.yaml", "depth: 3\nbase_width: 8\n"),
    ("m.toml", "depth = 3\nbase_width = 8\n"),
    ("m.json", '{"depth": 3, "base_width": 8}'),
])
def test_three_formats_give_the_same_config(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    cfg = load_config(ModelConfig, tmp_path / name)
    assert (cfg.depth, cfg.base_width) == (3, 8)


def test_errors_name_field_and_file_one_line_each(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("depth: 0\nbase_widht: 8\nnorm: layer\n")
    with pytest.raises(ConfigError) as info:
        load_config(ModelConfig, p)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith(f"{p}: depth:") and "greater than or equal to 1" in line for line in lines)
    assert any("base_widht: unknown field" in line for line in lines)
    assert any(line.startswith(f"{p}: norm:") for line in lines)


def test_cross_field_error_names_both_values(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"depth": 2, "branches": 4}))
    with pytest.raises(ConfigError, match="branches=4.*depth=2"):
        load_config(ModelConfig, p)


def test_overrides_and_unparseable_files(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("depth: 3\n")
    assert load_config(ModelConfig, p, {"lowpass.mode": "replace"}).lowpass.mode == "replace"
    (tmp_path / "broken.yaml").write_text("depth: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml: cannot parse YAML"):
        read_mapping(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="no such config file"):
        read_mapping(tmp_path / "nope.yaml")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_mapping(tmp_path / "list.json")


def test_saved_config_reloads_identically(tmp_path):
    cfg = ModelConfig(depth=4, skip="add")
    save_config(cfg, tmp_path / "c.json")
    assert load_config(ModelConfig, tmp_path / "c.json") == cfg
    assert not (tmp_path / "c.json.tmp").exists()
