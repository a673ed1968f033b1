"""The user-facing errors: one family, so the CLI and the server can catch them in one place."""

from __future__ import annotations

import pickle

import pytest

from artsim import errors
from artsim.search.options import OptionError, SearchOptions

SUBCLASSES = [
    errors.ImageLoadError,
    errors.ModelUnavailableError,
    errors.CatalogError,
    errors.SourceError,
    OptionError,
]


@pytest.mark.parametrize("cls", SUBCLASSES)
def test_every_user_error_is_an_artsim_error(cls) -> None:
    assert issubclass(cls, errors.ArtsimError)


def test_errors_keep_their_message_across_processes() -> None:
    # upload workers raise these in another process; the server re-raises what arrives
    for exc in (errors.CatalogError("cat: damaged part-000001.parquet"),):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
    with pytest.raises(OptionError) as caught:
        SearchOptions.parse(k="zero")
    back = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(back, OptionError) and str(back) == str(caught.value)
    assert str(back).startswith("k")
