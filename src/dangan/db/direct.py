"""Hot-path statements: compiled once per dialect, run on the driver's own cursor.

``Connection.execute`` costs about 25 µs of Python per statement (parameter and result
processing, events, the compiled cache), which for a durable ledger append — four small
statements around one disk flush — was most of the append. A :class:`DirectStatement`
is a Core statement compiled once per dialect; each run applies the same bind processors
SQLAlchemy itself would, calls the DB-API cursor, and wraps driver errors in
SQLAlchemy's exception classes (``sqlalchemy.exc.IntegrityError`` …), so callers see
what ``Connection.execute`` would raise. It runs inside the connection's transaction,
beginning one first as ``Connection.execute`` would.

Not seen by these statements: SQLAlchemy's ``*_cursor_execute`` events and its compiled
cache, and the result processors (so only plain columns — integers, strings, bytes —
should be selected through here).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Row = tuple[Any, ...]


class DirectStatement:
    """A Core statement run on the DB-API cursor of the connection it is given."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[Dialect, _Compiled] | None = None

    def _for(self, dialect: Dialect) -> _Compiled:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled(self._statement, dialect)
        self._last = (dialect, compiled)
        return compiled

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run once with ``params`` (bound values default to those in the statement);
        the rows it returns, as tuples."""
        compiled = self._for(conn.dialect)
        return _run(conn, compiled, compiled.one(params or {}), many=False)

    def execute_columns(
        self,
        conn: Connection,
        columns: Mapping[str, Sequence[Any]],
        *,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        """Run once per position of the (equally long) ``columns`` (``executemany``);
        ``constants`` give parameters whose value is the same in every row."""
        count = len(next(iter(columns.values())))
        if count:
            compiled = self._for(conn.dialect)
            _run(conn, compiled, compiled.many(count, columns, constants or {}), many=True)


def _run(conn: Connection, compiled: _Compiled, params: Any, *, many: bool) -> list[Row]:
    if not conn.in_transaction():
        conn.begin()  # what Connection.execute's autobegin does
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        if many:
            cursor.executemany(compiled.sql, params)
        else:
            cursor.execute(compiled.sql, params)
        return cursor.fetchall() if cursor.description is not None else []
    except compiled.dbapi_error as exc:
        dialect = conn.dialect
        raise DBAPIError.instance(
            compiled.sql,
            params,
            exc,
            compiled.dbapi_error,
            dialect=dialect,
            ismulti=many,
            connection_invalidated=dialect.is_disconnect(exc, dbapi_conn, cursor),
        ) from exc
    finally:
        cursor.close()


class _Compiled:
    """A statement compiled for one dialect: SQL, parameter order, bind processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        self.names: list[str] = list(compiled.positiontup or binds)
        self.keys: list[str] = [compiled.escaped_bind_names.get(n, n) for n in self.names]
        self.defaults: dict[str, Any] = {}
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name in self.names:
            bind = binds[name]
            if not bind.required:
                self.defaults[name] = bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process

    def one(self, params: Mapping[str, Any]) -> Any:
        """DB-API parameters for one run."""
        values = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            process = self.processors.get(name)
            values.append(value if process is None else process(value))
        return tuple(values) if self.positional else dict(zip(self.keys, values))

    def many(
        self, count: int, columns: Mapping[str, Sequence[Any]], constants: Mapping[str, Any]
    ) -> list[Any]:
        """DB-API parameters for ``count`` runs, built column by column."""
        values = []
        for name in self.names:
            process = self.processors.get(name)
            if name in columns:
                column = columns[name]
                values.append(column if process is None else list(map(process, column)))
            else:
                value = constants[name] if name in constants else self.defaults[name]
                values.append([value if process is None else process(value)] * count)
        if self.positional:
            return list(zip(*values, strict=True))
        return [dict(zip(self.keys, row)) for row in zip(*values, strict=True)]


class AutocommitReader:
    """Runs read-only :class:`DirectStatement` s on one DB-API connection per thread,
    held out of the pool and in autocommit mode, so each read is its own transaction and
    sees everything committed before it.

    For the reads of the busiest public route (one per scan of a licence): a pool
    checkout, a BEGIN and a ROLLBACK around one indexed SELECT cost more than the SELECT.
    A connection that fails is dropped and the next read opens another.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def rows(self, statement: DirectStatement, params: Mapping[str, Any]) -> list[Row]:
        """The rows ``statement`` returns for ``params``, as tuples."""
        proxied = getattr(self._local, "connection", None)
        if proxied is None:
            proxied = self._open()
        compiled = statement._for(self._engine.dialect)
        values = compiled.one(params)
        cursor = proxied.dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, values)
            return cursor.fetchall()
        except compiled.dbapi_error as exc:
            self._drop(proxied)
            raise DBAPIError.instance(
                compiled.sql, values, exc, compiled.dbapi_error, dialect=self._engine.dialect
            ) from exc
        finally:
            cursor.close()

    def close(self) -> None:
        """Discard every connection opened (they are in autocommit mode: not for the pool)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for proxied in opened:
            proxied.invalidate()

    def _open(self) -> Any:
        proxied = self._engine.raw_connection()
        if self._engine.dialect.name == "postgresql":
            proxied.dbapi_connection.autocommit = True
        # SQLite connections of dangan's engines already run in the driver's autocommit
        # mode (isolation_level None); BEGIN is only ever sent by SQLAlchemy's events.
        self._local.connection = proxied
        with self._lock:
            self._opened.append(proxied)
        return proxied

    def _drop(self, proxied: Any) -> None:
        self._local.connection = None
        with self._lock:
            if proxied in self._opened:
                self._opened.remove(proxied)
        proxied.invalidate()
