"""A broken cost-model data file is named in the YAML error (not "<unicode string>")."""

import pytest
import yaml

from lowbit.costmodel import data


def test_yaml_error_names_the_data_file(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "broken.yaml").write_text("a: [1, 2\nb: 3\n", encoding="utf-8")
    monkeypatch.setattr(data.resources, "files", lambda package: tmp_path)
    with pytest.raises(yaml.YAMLError) as err:
        data.load.__wrapped__("broken")
    assert "broken.yaml" in str(err.value)
