import numpy as np
import pytest
import scipy.linalg

from lowbit.simulator import hadamard


def test_hand_worked_size_4():
    # H4 [1, 2, 3, 4] = [10, -2, -4, 0]; normalised by 1/2, exactly.
    np.testing.assert_array_equal(hadamard(np.array([1.0, 2.0, 3.0, 4.0])), [5.0, -1.0, -2.0, 0.0])


@pytest.mark.parametrize("h", [1, 2, 8, 32, 128, 1024])
def test_matches_the_sylvester_matrix_and_inverts(h):
    x = np.random.default_rng(h).standard_normal((3, 2 * h))
    y = hadamard(x, h)
    ref = (x.reshape(3, 2, h) @ (scipy.linalg.hadamard(h) / np.sqrt(h))).reshape(3, 2 * h)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12 * np.sqrt(h))
    np.testing.assert_allclose(hadamard(y, h, inverse=True), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(y), np.linalg.norm(x), rtol=1e-13)


def test_random_signs_are_seeded_and_invert():
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    y = hadamard(x, 64, seed=9)
    np.testing.assert_array_equal(y, hadamard(x, 64, seed=9))
    assert not np.allclose(y, hadamard(x, 64, seed=10))
    np.testing.assert_allclose(hadamard(y, 64, seed=9, inverse=True), x, atol=1e-6)


def test_axis_and_errors():
    x = np.random.default_rng(2).standard_normal((16, 3))
    np.testing.assert_array_equal(hadamard(x, axis=0), hadamard(x.T).T)
    with pytest.raises(ValueError, match="power of two"):
        hadamard(np.ones(12))
    with pytest.raises(ValueError, match="divide"):
        hadamard(np.ones(12), 8)


def test_cuda_equals_cpu():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    x = np.random.default_rng(3).standard_normal((2, 32))
    np.testing.assert_array_equal(hadamard(x, 16, target="cuda"), hadamard(x, 16))
