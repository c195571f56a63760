import pytest

from infomax.data.dataset import Dataset
from tests.datasets import small_digits


@pytest.fixture
def digits16() -> Dataset:
    return small_digits()
