"""scfill.nn.uniform: seeded uniform draws (numpy PCG64 on the CPU)."""

import numpy as np
import pytest
import torch

from scfill.nn.uniform import UniformStream


def test_draws_are_uniform_float32_and_reproducible():
    a, b = UniformStream(7, "cpu"), UniformStream(7, "cpu")
    x = a.draw((300, 1001))
    assert x.dtype == torch.float32 and x.shape == (300, 1001)
    assert float(x.min()) >= 0 and float(x.max()) < 1
    torch.testing.assert_close(np.quantile(x.numpy(), [0.1, 0.5, 0.9]),
                               np.array([0.1, 0.5, 0.9]), atol=0.01, rtol=0)
    torch.testing.assert_close(b.draw((300, 1001)), x, rtol=0, atol=0)
    assert not torch.equal(a.draw((300, 1001)), x)  # the stream moves on
    assert not torch.equal(UniformStream(8, "cpu").draw((300, 1001)), x)


def test_any_shape_and_distinct_values():
    x = UniformStream(0, "cpu").draw((7,))
    assert x.shape == (7,) and len(set(x.tolist())) == 7
    assert UniformStream(0, "cpu").draw(torch.Size([2, 3, 4])).shape == (2, 3, 4)


def test_state_round_trip_resumes_the_stream():
    stream = UniformStream(3, "cpu")
    stream.draw((5, 4))
    state = stream.state()
    expected = stream.draw((5, 4))
    other = UniformStream(99, "cpu")
    other.set_state(state)
    torch.testing.assert_close(other.draw((5, 4)), expected, rtol=0, atol=0)


@pytest.mark.gpu
def test_cuda_draws_are_reproducible():
    a, b = UniformStream(1, "cuda"), UniformStream(1, "cuda")
    x = a.draw((64, 32))
    assert x.device.type == "cuda"
    torch.testing.assert_close(b.draw((64, 32)), x)
    state = a.state()
    y = a.draw((3,))
    b2 = UniformStream(5, "cuda")
    b2.set_state(state)
    torch.testing.assert_close(b2.draw((3,)), y)
