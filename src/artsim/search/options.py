"""Search options, validated in one place for the Python API, the CLI and the HTTP API.

    opts = SearchOptions.parse(aspect="fused", k="12", weights="global=1,face=2")
    catalog.search(query, k=opts.k, aspect=opts.aspect, where=opts.where, **opts.aspect_options())

`parse` takes Python values or the strings a command line or a query string carries, and raises
OptionError (an ArtsimError) whose message starts with the option's name, e.g.
"weights 'global=nan': weights must be finite numbers >= 0". The CLI prints it on one line, the
server answers it as HTTP 400, `Catalog.search` raises it: the same words everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from artsim.errors import ArtsimError

SEARCH_ASPECTS = ("global", "face", "pose", "fused")
WEIGHT_ASPECTS = ("global", "face", "pose")
MAX_K = 1000
# which aspects read each option (the others ignore it, or refuse it with strict=True)
APPLIES = {
    "face": ("face", "fused"),
    "box": ("face", "fused"),
    "identity": ("face",),
    "figure": ("pose", "fused"),
    "mirror": ("pose", "fused"),
    "weights": ("fused",),
    "min_score": ("pose",),
    "photo": ("global",),
}
PHOTO_MODES = ("auto", "off")
OPTION_NAMES = ("aspect", "k", "where", *APPLIES)


class OptionError(ArtsimError):
    """A search option with a bad value; `option` is its name, and the message starts with it."""

    def __init__(self, option: str, message: str, *, named: bool = False) -> None:
        super().__init__(message if named else f"{option} {message}")
        self.option = option

    def __reduce__(self) -> tuple[Any, ...]:  # raised in an upload worker, re-raised in the server
        return (_option_error, (self.option, str(self)))


def _option_error(option: str, message: str) -> OptionError:
    return OptionError(option, message, named=True)


Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """Validated search options. Build it with `SearchOptions.parse`; the fields are then typed
    and in range. Options an aspect does not read keep their defaults."""

    aspect: str = "global"
    k: int = 10
    where: tuple[str, ...] = ()
    weights: tuple[tuple[str, float], ...] | None = None
    face: int | None = None
    box: Box | None = None
    figure: int | None = None
    mirror: bool = False
    min_score: float = 0.0
    identity: bool = True
    photo: str = "auto"  # global image queries: find the painting in a photo (docs/photos.md)

    @classmethod
    def parse(
        cls,
        *,
        aspect: Any = "global",
        k: Any = 10,
        where: Any = None,
        weights: Any = None,
        face: Any = None,
        box: Any = None,
        figure: Any = None,
        mirror: Any = False,
        min_score: Any = 0.0,
        identity: Any = True,
        photo: Any = "auto",
        max_k: int | None = MAX_K,
        strict: bool = False,
    ) -> SearchOptions:
        """Check and convert every option (strings as well as Python values).

        max_k: the largest k (None: no limit, as in the Python API).
        strict: refuse options the aspect does not read (`mirror` with aspect global) instead
        of ignoring them, as the Python API and the CLI do; the HTTP API ignores them."""
        aspect_name = str(aspect or "global").strip()
        if aspect_name not in SEARCH_ASPECTS:
            raise OptionError(
                "aspect",
                f"unknown aspect {aspect_name!r}; choose from {', '.join(SEARCH_ASPECTS)}",
                named=True,
            )
        checked = cls(
            aspect=aspect_name,
            k=_integer("k", k, 1, max_k),
            where=_where(where),
            weights=_weights(weights),
            face=None if _empty(face) else _integer("face", face, 0, None),
            box=_box(box),
            figure=None if _empty(figure) else _integer("figure", figure, 0, None),
            mirror=_boolean("mirror", mirror),
            min_score=_fraction("min_score", min_score),
            identity=_boolean("identity", identity),
            photo=_photo(photo),
        )
        defaults = cls()
        unread = {n: getattr(defaults, n) for n in APPLIES if aspect_name not in APPLIES[n]}
        if strict:
            for name in sorted(n for n in unread if getattr(checked, n) != unread[n]):
                where_ok = " or ".join(APPLIES[name])
                raise OptionError(
                    name,
                    f"applies only with aspect {where_ok} (this search is aspect {aspect_name})",
                )
        # options the aspect does not read keep their defaults
        return dataclasses.replace(checked, **unread)

    @property
    def weights_dict(self) -> dict[str, float] | None:
        return dict(self.weights) if self.weights is not None else None

    def aspect_options(self) -> dict[str, Any]:
        """Keyword options for `Catalog.search` with this aspect (only those it reads)."""
        if self.aspect == "face":
            return {"face": self.face, "box": self.box, "identity": self.identity}
        if self.aspect == "pose":
            return {"figure": self.figure, "mirror": self.mirror, "min_score": self.min_score}
        if self.aspect == "fused":
            return {"weights": self.weights_dict, "mirror": self.mirror, "face": self.face,
                    "box": self.box, "figure": self.figure}  # fmt: skip
        return {} if self.photo == "auto" else {"photo": self.photo}  # auto: the default


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the options SearchOptions checks, the rest: aspect-specific extras such as whiten)."""
    known = {n: v for n, v in options.items() if n in APPLIES}
    return known, {n: v for n, v in options.items() if n not in APPLIES}


# ---------------------------------------------------------------------- converters
def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _integer(name: str, value: Any, low: int, high: int | None) -> int:
    if isinstance(value, bool):
        raise OptionError(name, f"{value!r}: expected a whole number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        text = str(value).strip()
        try:
            n = int(text)
        except ValueError:
            raise OptionError(name, f"{text!r}: expected a whole number") from None
    if n < low or (high is not None and n > high):
        span = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise OptionError(name, f"{n}: must be {span}")
    return n


def _fraction(name: str, value: Any) -> float:
    if _empty(value):
        return 0.0
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise OptionError(name, f"{value!r}: must be a number between 0 and 1") from None
    if not 0.0 <= x <= 1.0:  # NaN fails too
        raise OptionError(name, f"{value!r}: must be a number between 0 and 1")
    return x


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        raise OptionError(name, "None: expected true or false")
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise OptionError(name, f"{value!r}: expected true or false")


def _box(value: Any) -> Box | None:
    if _empty(value):
        return None
    from artsim.search.faces import parse_box

    if not isinstance(value, str):
        if not isinstance(value, Sequence) or len(value) != 4:
            raise OptionError("box", f"{value!r}: expected x,y,w,h in pixels")
        value = ",".join(str(v) for v in value)
    try:
        return parse_box(value)
    except ArtsimError as exc:
        raise OptionError("box", str(exc)) from None


def _weights(value: Any) -> tuple[tuple[str, float], ...] | None:
    """'global=1,face=2' or {'global': 1, 'face': 2}: known aspects, finite, >= 0, one > 0."""
    if value is None or (isinstance(value, str | Mapping) and not value):
        return None
    shown = repr(value) if isinstance(value, str) else repr(dict(value))
    pairs: list[tuple[str, Any]]
    if isinstance(value, str):
        pairs = [tuple(p.partition("=")[::2]) for p in value.split(",")]  # type: ignore[misc]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise OptionError("weights", f"{shown}: expected e.g. global=1,face=2,pose=0.5")
    out: dict[str, float] = {}
    for name, raw in pairs:
        name = str(name).strip()
        if name not in WEIGHT_ASPECTS:
            raise OptionError(
                "weights", f"{shown}: unknown aspect {name!r} ({', '.join(WEIGHT_ASPECTS)})"
            )
        try:
            w = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            raise OptionError(
                "weights", f"{shown}: expected e.g. global=1,face=2,pose=0.5"
            ) from None
        if not (0.0 <= w < math.inf):  # NaN fails too
            raise OptionError("weights", f"{shown}: weights must be finite numbers >= 0")
        out[name] = w
    from artsim.search.fusion import DEFAULT_WEIGHTS

    if not any({**DEFAULT_WEIGHTS, **out}.values()):  # the weights not given keep their defaults
        raise OptionError("weights", f"{shown}: at least one weight must be positive")
    return tuple(out.items())


def _photo(value: Any) -> str:
    if _empty(value) or value is True:
        return "auto"
    if value is False:
        return "off"
    text = str(value).strip().lower()
    if text not in PHOTO_MODES:
        raise _option_error("photo", f"photo {value!r}: choose auto or off")
    return text


def _where(value: Any) -> tuple[str, ...]:
    from artsim.search.filters import FilterError, parse_where, split_where

    if value is None:
        return ()
    clauses = split_where(value if isinstance(value, str) else [str(v) for v in value])
    try:
        parse_where(clauses)
    except FilterError as exc:
        raise OptionError("where", str(exc), named=True) from None  # it names the filter
    return tuple(clauses)
