"""The on-disk cache of constructed codebooks: read back bit-exactly, rebuilt when a file is unsound."""

from __future__ import annotations

import json

import pytest

from lowbit._version import __version__
from lowbit.formats import constructions, disk_cache

# Values whose float64 bits a decimal round trip could lose: 0.1 + 0.2, 1/3, the smallest
# subnormal, -0.0, the largest finite double.
AWKWARD = (0.30000000000000004, 1 / 3, 5e-324, -0.0, 1.7976931348623157e308)


@pytest.fixture(autouse=True)
def cache_in(tmp_path, monkeypatch):
    monkeypatch.setenv(disk_cache.CACHE_ENV, str(tmp_path / "codebooks"))
    return tmp_path / "codebooks"


def _fails():
    raise AssertionError("built again: the cached file was not read")


def test_a_second_construction_reads_the_file_bit_exactly(cache_in):
    first = disk_cache.cached_codebook("test", {"n": 5}, lambda: AWKWARD)
    assert list(cache_in.iterdir()) == [disk_cache.cache_path("test", {"n": 5})]
    second = disk_cache.cached_codebook("test", {"n": 5}, _fails)
    assert [v.hex() for v in second] == [v.hex() for v in first] == [v.hex() for v in AWKWARD]


def test_other_parameters_are_another_file(cache_in):
    disk_cache.cached_codebook("test", {"n": 5}, lambda: (1.0,))
    assert disk_cache.cached_codebook("test", {"n": 6}, lambda: (2.0,)) == (2.0,)
    assert len(list(cache_in.iterdir())) == 2


@pytest.mark.parametrize(
    "text",
    [
        "",  # an empty file (a full disk)
        '{"key": "x", "values": ["0x1p+0"',  # cut short
        "not json at all",
        '{"values": ["0x1p+0"]}',  # no key
        None,  # the right key, a value that is not a hexadecimal float
    ],
)
def test_a_corrupt_file_is_ignored_and_rebuilt(cache_in, text):
    path = disk_cache.cache_path("test", {"n": 5})
    path.parent.mkdir(parents=True)
    key = json.dumps({"construction": "test", "params": {"n": 5}, "version": __version__}, sort_keys=True)
    path.write_text(json.dumps({"key": key, "values": ["zz"]}) if text is None else text)
    assert disk_cache.cached_codebook("test", {"n": 5}, lambda: (2.5,)) == (2.5,)
    assert disk_cache.cached_codebook("test", {"n": 5}, _fails) == (2.5,)  # and rewritten whole


def test_a_file_of_another_version_is_ignored_and_rebuilt(cache_in):
    path = disk_cache.cache_path("test", {"n": 5})
    path.parent.mkdir(parents=True)
    foreign = json.dumps({"construction": "test", "params": {"n": 5}, "version": "0.0.1"}, sort_keys=True)
    path.write_text(json.dumps({"key": foreign, "values": [(7.0).hex()]}))
    assert disk_cache.cached_codebook("test", {"n": 5}, lambda: (2.5,)) == (2.5,)


def test_the_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(disk_cache.CACHE_ENV)
    monkeypatch.setenv(disk_cache.NUMBA_ENV, str(tmp_path / "numba"))
    assert disk_cache.cache_dir() == tmp_path / "numba" / "lowbit-codebooks"
    monkeypatch.setenv(disk_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert disk_cache.cache_dir() == tmp_path / "mine"


def test_an_unwritable_folder_still_gives_the_codebook(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(disk_cache.CACHE_ENV, str(blocker / "codebooks"))  # under a file: cannot be made
    assert disk_cache.cached_codebook("test", {"n": 5}, lambda: (2.5,)) == (2.5,)


def test_no_temporary_file_is_left(cache_in):
    disk_cache.cached_codebook("test", {"n": 5}, lambda: (2.5,))
    assert [p.suffix for p in cache_in.iterdir()] == [".json"]


def test_constructions_read_the_cache(cache_in):
    # Lloyd-Max for 2 levels is +-sqrt(2/pi) (the mean of a half normal), 0.7978845608028654.
    assert constructions.lloyd_max_normal(2) == pytest.approx((-0.7978845608028654, 0.7978845608028654), abs=1e-12)
    path = disk_cache.cache_path("lloyd_max_normal", {"n": 2, "tol": 1e-12, "max_iter": 100_000})
    assert path.is_file()
    # a planted file is what the next construction returns: it is read, not recomputed
    entry = json.loads(path.read_text())
    path.write_text(json.dumps({**entry, "values": [(-0.5).hex(), (0.5).hex()]}))
    assert constructions.lloyd_max_normal(2) == (-0.5, 0.5)


def test_af4_is_cached_per_block(cache_in, monkeypatch):
    # The median chain itself (seconds) is replaced: what is tested is where its result goes.
    monkeypatch.setattr(constructions, "_af4", lambda block: (-1.0, 0.0, 1.0 / block, 1.0))
    assert constructions.af4(8) == (-1.0, 0.0, 0.125, 1.0)
    assert disk_cache.cache_path("af4", {"block": 8}).is_file()
    assert not disk_cache.cache_path("af4", {"block": 16}).exists()
    monkeypatch.setattr(constructions, "_af4", lambda block: _fails())
    assert constructions.af4(8) == (-1.0, 0.0, 0.125, 1.0)


@pytest.mark.parametrize(
    "build, construction",
    [
        (constructions.bof4_mse, "bof4_mse"),
        (constructions.bof4_mae, "bof4_mae"),
        (constructions.bof4s_mse, "bof4s_mse"),
        (constructions.bof4s_mae, "bof4s_mae"),
    ],
)
def test_each_bof4_variant_has_its_own_file(cache_in, monkeypatch, build, construction):
    monkeypatch.setattr(constructions, "_lloyd_iterate", lambda block, error, signed: (float(block), 0.5))
    assert build(8) == (8.0, 0.5)
    assert [p.name.split("-")[0] for p in cache_in.iterdir()] == [construction]
    monkeypatch.setattr(constructions, "_lloyd_iterate", lambda *args: _fails())
    assert build(8) == (8.0, 0.5)
