from pathlib import Path

import pytest

from lowbit.study import run_study, validate_study


def small_results(folder: Path) -> Path:
    study = {
        "schema_version": 1,
        "name": "dash",
        "formats": ["mxfp4", "nvfp4", "int8_per_channel", "float8_e4m3fn", "nf4", "mxfp6_e2m3", "bitnet_b158"],
        "workloads": [
            {"kind": "normal", "shape": [16, 256], "seed": 1, "name": "normal"},
            {"kind": "laplace", "shape": [16, 256], "seed": 2, "name": "laplace"},
        ],  # fmt: skip
        "metrics": ["qsnr_db", "mse", "mae"],
        "cost": {"node": "7nm"},
    }
    run_study(validate_study(study), folder, progress=False)
    return folder


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    return small_results(tmp_path_factory.mktemp("results"))
