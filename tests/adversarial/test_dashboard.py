"""The dashboard under attack (issue I, rule 9): forged tables that ask a detail click or the designer
for huge workloads, bad designer inputs, forged page state, foreign Host headers and bad ports; and
what held before and must keep holding (loopback bind, path traversal, pickled .npy, dev tools off).

Tables are forged by hand with pandas, as anyone who can write to the results folder could. Expected
values come from hand arithmetic and from NumPy's generator directly, never from the code under test."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lowbit.cli import build_parser, main
from lowbit.dashboard import create_app, views
from lowbit.study.replay import requantize
from lowbit.study.schema import NpyFile
from lowbit.study.workloads import load as load_workload

TABLE = "forged.parquet"
MB = 1 << 20
PEAK_LIMIT = 24 * MB  # a bounded sample (2^16 elements) and its figures stay well below this
CLI_TIMEOUT = 60  # seconds for one `lowbit dashboard` subprocess that must end by itself


def normal(shape, seed=7) -> dict:
    return {"kind": "normal", "shape": shape, "seed": seed, "name": "w"}


def forge(folder: Path, format_spec: dict, workload_spec: dict, name: str = TABLE) -> str:
    """A one-row table whose specs say whatever the forger likes, with the columns the views read."""
    pd.DataFrame({
        "format": ["forged"], "workload": ["w"], "status": ["ok"], "error": [""], "qsnr_db": [20.0],
        "bits_per_element": [4.25], "format_spec": [json.dumps(format_spec)],
        "workload_spec": [json.dumps(workload_spec)], "cost_spec": ["{}"],
    }).to_parquet(folder / name)  # fmt: skip
    return name


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> Path:
    """A folder with a small honest table, its detail drawn once (compiled kernels, imports) so that
    the memory measured below is the sample's, not the first call's."""
    folder = tmp_path_factory.mktemp("warm")
    forge(folder, {"format": "mxfp4"}, normal([4, 64]))
    assert views.detail_view(folder, TABLE, None, {}, 0)[0] == "forged on w"
    return folder


def peak_of(fn, *args):
    """fn(*args) and the peak of memory traced while it ran (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def detail(folder: Path, format_spec: dict, workload_spec: dict):
    name = forge(folder, format_spec, workload_spec)
    return peak_of(views.detail_view, folder, name, None, {}, 0)


# ----- detail views and the designer draw a bounded sample (64 rows, 2^16 elements) --------------------


@pytest.mark.parametrize(
    "format_spec, shape, message",
    [
        ({"format": "mxfp4"}, [10**6, 10**6], "workload_spec.shape: rows of K = 1000000 elements exceed the "
         "replay's bound of 65536 elements per sample"),
        ({"format": "mxfp4", "block": 1 << 24}, [4, 64], "format_spec.block: a row padded to 16777216 elements "
         "(K = 64) exceeds"),
        ({"format": "mxfp4", "hadamard": 1 << 40}, [4, 64], "format_spec.hadamard: a row padded to "
         "1099511627776 elements (K = 64) exceeds"),
        ({"format": "mxfp4", "hadamard": 1 << 20}, [2, 1 << 20], "workload_spec.shape: rows of K = 1048576"),
    ],
)  # fmt: skip
def test_a_forged_row_beyond_the_bound_is_refused_before_drawing(warm, tmp_path, format_spec, shape, message):
    (title, *figs), peak = detail(tmp_path, format_spec, normal(shape))
    assert title.startswith("forged: no detail (") and message in title
    assert all(len(f.data) == 0 for f in figs) and peak < PEAK_LIMIT


@pytest.mark.parametrize(
    "shape, sample_elements",
    [
        ([3, 10**6, 16], 64 * 16),  # 3-D: the rows are cut over all leading axes, not the first only
        ([10**9, 2048], 32 * 2048),  # 2^16 elements: 32 rows of 2048, not 64
        ([5, 1 << 16], 1 << 16),  # one row of 2^16 is the most a sample holds
    ],
)
def test_a_forged_huge_workload_gets_a_bounded_sample(warm, tmp_path, shape, sample_elements):
    (title, grid, mag, hist, _), peak = detail(tmp_path, {"format": "mxfp4"}, normal(shape))
    assert title == "forged on w" and len(hist.data[0].x) == sample_elements and peak < PEAK_LIMIT


def test_the_sample_is_the_workloads_first_rows_drawn_by_numpy(tmp_path):
    forge(tmp_path, {"format": "mxfp4"}, normal([10**9, 2048], seed=11))
    row = pd.read_parquet(tmp_path / TABLE).iloc[0]
    r = requantize(row)
    # 2^16 elements / 2048 per row = 32 rows; NumPy fills row-major, so they are the first 32 rows
    np.testing.assert_array_equal(r.x, np.random.default_rng(11).standard_normal((32, 2048)).astype(np.float32))


def test_a_forged_gemm_with_huge_activations_is_refused(warm, tmp_path):
    spec = {"kind": "gemm", "a": normal([2, 1 << 21]), "b": normal([2, 1 << 21])}
    (title, *_), peak = detail(tmp_path, {"format": "nvfp4"}, spec)
    assert "no detail (workload_spec.shape: rows of K = 2097152 elements exceed" in title and peak < PEAK_LIMIT


def test_the_designer_on_a_forged_huge_workload_is_refused(warm, tmp_path):
    forge(tmp_path, {"format": "mxfp4"}, normal([10**6, 10**6]))
    (cands, msg), peak = peak_of(views.design_view, tmp_path, TABLE, "w", "qsnr_db", "bits_per_element", "e2m1", 32,
                                 "e8m0", "ocp_floor", [])  # fmt: skip
    assert cands == [] and peak < PEAK_LIMIT
    assert msg.startswith("Cannot evaluate that format on w: workload_spec.shape: rows of K = 1000000 elements")


# ----- designer inputs: an integer block from 0 to 4096, known element, scale and rule names ----------


def design(folder: Path, element="e2m1", block=32, scale="e8m0", rule="ocp_floor"):
    return views.design_view(folder, TABLE, "w", "qsnr_db", "bits_per_element", element, block, scale, rule, [])


@pytest.fixture
def honest(tmp_path) -> Path:
    forge(tmp_path, {"format": "mxfp4"}, normal([16, 256]))
    return tmp_path


@pytest.mark.parametrize("block", ["1.5", "2e6", -3, "abc", 1.5, 2_000_000, 4097, True, None, " ", "-1", "²"])
def test_a_bad_designer_block_is_refused_naming_the_field(honest, block):
    cands, msg = design(honest, block=block)
    assert cands == []
    assert msg == f"Cannot build that format: block: must be an integer from 0 (none) to 4096, got {block!r}"


def test_the_largest_designer_block_is_accepted(honest):
    cands, msg = design(honest, block="4096")
    # e2m1 with an e8m0 scale per block of 4096; the workload's rows hold 256, so each row is one block
    # and stores its own scale: 4 + 8/256 bits per element, by hand
    assert len(cands) == 1 and cands[0]["x"] == 4 + 8 / 256 and msg.startswith("Candidate e2m1 b4096")


@pytest.mark.parametrize(
    "element, block, message",
    [
        ("e2m1" * 100, 32, "element: a name has at most 64 characters, got 400"),
        ("af4_b65536", 0, "element: 'af4_b65536' has a block above the designer's 4096"),
        (None, 32, "element: enter a format name (eXmY, intN or a catalog name), got None"),
        ("mxfp4", 32, "element: 'mxfp4' has its own scales; set block to 0 to take it as it is"),
        ("nope", 32, "element: unknown name 'nope'"),
    ],
)
def test_a_bad_designer_element_is_refused_naming_the_field(honest, element, block, message):
    cands, msg = design(honest, element=element, block=block)
    assert cands == [] and msg.startswith(f"Cannot build that format: {message}")


@pytest.mark.parametrize("scale", ["e5m2", ["e8m0"]])
def test_a_scale_outside_the_designers_list_is_refused(honest, scale):
    cands, msg = design(honest, scale=scale)
    assert cands == []
    assert msg == f"Cannot build that format: scale: must be one of e8m0, e4m3, ue5m3, fp16, bf16, fp32, got {scale!r}"


# ----- forged page state: click data, candidates and dropdown values are client input -------------


@pytest.mark.parametrize("index", [[0], {"row": 0}])
def test_forged_click_data_is_no_row(honest, index):
    title, *figs = views.detail_view(honest, TABLE, None, {}, index)
    assert title == "Click a point to see its detail." and all(len(f.data) == 0 for f in figs)


@pytest.mark.parametrize("candidates", [5, [{"metric": "qsnr_db", "cost": "bits_per_element"}], "abc"])
def test_forged_candidates_are_left_out(honest, candidates):
    fig, rows, message = views.pareto_view(honest, TABLE, "w", "qsnr_db", "bits_per_element", {}, candidates)
    assert [t.name for t in fig.data] == ["points", "Pareto front"] and message == ""


def test_a_forged_workload_value_matches_no_rows(honest):
    assert design(honest, block=32)[1].startswith("Candidate")  # the same call with a real workload works
    cands, msg = views.design_view(honest, TABLE, ["w", "w", "w"], "qsnr_db", "bits_per_element", "e2m1", 32,
                                   "e8m0", "ocp_floor", [])  # fmt: skip
    assert cands == [] and msg == "Pick a workload."


# ----- Host headers: only the bound address, unless allowed -------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hosts")
    forge(folder, {"format": "mxfp4"}, normal([4, 64]))
    return create_app(folder, port=8050).server.test_client()


@pytest.mark.parametrize("host", ["evil.com", "evil.com:8050", "127.0.0.1.evil.com:8050", "localhost:8050@evil.com",
                                  "127.0.0.1:8051", "localhost", "", "0.0.0.0:8050"])  # fmt: skip
def test_a_foreign_host_header_is_refused(client, host):
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 400 and b"is not this dashboard's address" in r.data


@pytest.mark.parametrize("host", ["127.0.0.1:8050", "localhost:8050", "[::1]:8050", "LOCALHOST:8050"])
def test_the_bound_address_is_served(client, host):
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 200 and b"_dash-config" in r.data


def test_allowed_hosts_admit_other_names(tmp_path):
    server = create_app(tmp_path, allowed_hosts=["dash.example.org", "10.0.0.5:9000"], port=8050).server
    c = server.test_client()
    assert c.get("/", headers={"Host": "dash.example.org:8443"}).status_code == 200  # a name alone: any port
    assert c.get("/", headers={"Host": "10.0.0.5:9000"}).status_code == 200
    assert c.get("/", headers={"Host": "10.0.0.5:9001"}).status_code == 400
    assert c.get("/", headers={"Host": "other.example.org:8050"}).status_code == 400


@pytest.mark.parametrize("entry", ["bad host", "a/b", "0.0.0.0", "x:99999"])
def test_a_bad_allowed_host_is_refused_naming_it(tmp_path, entry):
    with pytest.raises(ValueError, match=f"allowed_hosts: '{re.escape(entry)}' is not a host name"):
        create_app(tmp_path, allowed_hosts=[entry])


# ----- the command line: a bad port is one line and a non-zero exit -------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "lowbit.cli", "dashboard", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, env=env)  # fmt: skip


@pytest.mark.parametrize("port", ["99999", "-1", "abc", "0"])
def test_a_bad_port_is_one_line(tmp_path, port):
    r = cli(str(tmp_path), "--port", port)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"lowbit: error: --port: must be an integer from 1 to 65535, got '{port}'\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli(str(tmp_path), "--port", str(port))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"lowbit: error: --port: cannot listen on 127.0.0.1:{port}: in use by another program\n"


def test_a_bad_allow_host_flag_is_one_line(tmp_path, capsys):
    code = main(["dashboard", str(tmp_path), "--port", str(_free_port()), "--allow-host", "a b"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == "lowbit: error: --allow-host: 'a b' is not a host name (NAME or NAME:PORT)\n"


def _get(port: int, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* write them) of sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def _wait_for_server(proc: subprocess.Popen, port: int) -> None:
    end = time.time() + CLI_TIMEOUT
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard ended: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the dashboard did not start")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from Linux's /proc")
def test_the_served_dashboard_binds_loopback_refuses_foreign_hosts_and_has_no_dev_tools(tmp_path):
    port = _free_port()
    env = {**os.environ, "DASH_DEBUG": "true", "PYTHONWARNINGS": "ignore"}  # debug asked for, and still off
    proc = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "dashboard", str(tmp_path), "--port", str(port),
                             "--allow-host", "dash.example.org"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        _wait_for_server(proc, port)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1 only (little-endian hex), on no other address
        assert _get(port, f"evil.example.com:{port}")[0] == 400
        assert _get(port, f"dash.example.org:{port}")[0] == 200
        status, page = _get(port, f"127.0.0.1:{port}")
        config = json.loads(re.search(r'id="_dash-config" type="application/json">(.*?)</script>', page).group(1))
        assert status == 200 and config["ui"] is False and config["props_check"] is False
        assert "hot_reload" not in config
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# ----- what held, and must keep holding ----------------------------------------------------------------


def test_the_default_bind_is_loopback():
    args = build_parser().parse_args(["dashboard", "results"])
    assert args.host == "127.0.0.1" and args.port == "8050" and args.allow_host == []


def test_dev_tools_are_off_in_the_app(tmp_path):
    page = create_app(tmp_path).server.test_client().get("/").data.decode()
    config = json.loads(re.search(r'id="_dash-config" type="application/json">(.*?)</script>', page).group(1))
    assert config["ui"] is False and config["props_check"] is False and "hot_reload" not in config


@pytest.mark.parametrize("url", ["/assets/..%2f..%2fetc/passwd", "/%252e%252e/%252e%252e/etc/passwd"])
def test_path_traversal_over_http_is_refused(client, url):
    assert client.get(url, headers={"Host": "127.0.0.1:8050"}).status_code == 400


def test_a_link_out_of_the_results_folder_is_refused(tmp_path):
    outside, inside = tmp_path / "outside", tmp_path / "results"
    outside.mkdir()
    inside.mkdir()
    forge(outside, {"format": "mxfp4"}, normal([4, 64]), "secret.parquet")
    forge(inside, {"format": "mxfp4"}, normal([4, 64]), "mine.parquet")
    (inside / "link.parquet").symlink_to(outside / "secret.parquet")
    assert views.table_options(inside) == ["mine.parquet"]
    _, rows, message = views.pareto_view(inside, "link.parquet", None, "qsnr_db", "bits_per_element", {}, [])
    assert rows == [] and message == "Refused: 'link.parquet' is not a results file of this folder."


class _OpensAFile:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def pickled_npy(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "evil.npy", np.array([_OpensAFile(marker)], dtype=object), allow_pickle=True)
    return tmp_path / "evil.npy", marker


def test_a_pickled_npy_is_refused_by_studies(pickled_npy):
    path, marker = pickled_npy
    with pytest.raises(ValueError, match="pickle"):
        load_workload(NpyFile(kind="npy", path=str(path)), path.parent)
    assert not marker.exists()


def test_a_pickled_npy_is_never_read_by_the_detail_view(tmp_path, pickled_npy):
    path, marker = pickled_npy
    forge(tmp_path, {"format": "mxfp4"}, {"kind": "npy", "path": str(path), "name": "w"})
    title, *_ = views.detail_view(tmp_path, TABLE, None, {}, 0)
    assert title == "forged: no detail (the detail view redraws synthetic workloads only)" and not marker.exists()
