"""The boundary: a SQLAlchemy error never leaves the data package; it becomes a
StoreError with one line saying what happened and what to do."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError

C = TypeVar("C", bound=type)


def describe(error: BaseException) -> str:
    """One line for a database error."""
    text = first_line(error)
    lowered = text.lower()
    if "database is locked" in lowered or "could not obtain lock" in lowered:
        return "the database is locked by another digest process; try again"
    if "readonly database" in lowered or "read-only" in lowered:
        return "the database is read-only; check its file permissions"
    if isinstance(error, sa.exc.OperationalError) and ("connect" in lowered or "unable to open" in lowered):
        return f"cannot reach the database ({text}); check [database].url and that the server is running"
    if "no such table" in lowered or "does not exist" in lowered:
        return f"the database is missing part of its schema ({text}); run `digest db upgrade`"
    return f"database error ({text}); run again, or with --debug to see more"


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__


def guarded(cls: C) -> C:
    """Wrap every public method of a storage class so SQLAlchemy errors become StoreError."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _guard(member))
    return cls


def _guard(function: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from function(*args, **kwargs)
            except SQLAlchemyError as error:
                raise StoreError(describe(error)) from error
        return generator

    @functools.wraps(function)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SQLAlchemyError as error:
            raise StoreError(describe(error)) from error
    return plain
