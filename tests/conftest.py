import os

import pytest

from nnx import _core

ISAS = _core.supported_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test once per ISA level this CPU supports, restoring the active one after."""
    previous = _core.active_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


@pytest.fixture
def threads():
    """Restores nnx's thread count after a test that changes it."""
    previous = _core.get_num_threads()
    yield
    _core.set_num_threads(previous)


def data_dir():
    return os.environ.get("NNX_DATA_DIR")
