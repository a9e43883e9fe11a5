import pytest
import torch

# Tests use tiny tensors: one intra-op thread is faster than two (no thread synchronisation per op, which
# dominates on a busy 2-core CI box) and keeps results independent of the machine's core count.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
