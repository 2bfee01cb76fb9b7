"""Importers of transaction exports: generic order lines and the CDNOW purchase log.

An order-lines export has one row per line item (order id, customer id, time, quantity, unit
price). DuckDB parses and aggregates the lines into canonical orders on disk, so a file of
millions of lines streams: amount = Σ|quantity × price|, items = Σ|quantity|, ordered_at = the
first line time in UTC. Lines with a negative quantity, or of an order whose id starts with the
cancel prefix, are returns (`is_return`, amount still positive); an order holding both kinds is
split and its return part gets the id `<order>-return`. Lines without a customer id, with an
unreadable time, with a quantity beyond ±`MAX_QUANTITY` or a price that is not a finite number,
or whose quantity × price overflows are quarantined with the reason. So are all lines of an order
id used by several customers (in the export, or stored in the lake for another member) and of an
order whose totals overflow, and CSV lines DuckDB cannot split into the header's fields or that
are not UTF-8. Every line is either aggregated or quarantined; a file that cannot be read at all
is a ContractError naming it.

Members who appear only through their purchases are derived (`is_derived`): registered at their
first order, channel and region "unknown", the lowest tier, no consents. Members already in the
lake are left alone. Derived members, then orders, go through the same path as `ingest`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd

from memberscore import contract, lake
from memberscore.errors import ContractError
from memberscore.settings import Settings
from pipelines.ingest import readers
from pipelines.ingest.tables import IngestReport, check_currency, ingest_chunks, new_run_id

EXAMPLES = 5
CDNOW_CURRENCY = "USD"
# Largest |quantity| of a line and largest item total of an order: well inside the integers a
# float64 holds exactly (2**53), so `items` stays exact through the contract's Int64 column.
MAX_QUANTITY = 1e15


@dataclass(frozen=True)
class LineMapping:
    """Which column of an order-lines export holds what, and how to read it.

    `price` is the unit price; exports that carry line totals instead name that column in
    `line_total`. `time_format` is a strptime format (default: ISO 8601); times without an offset
    are read in `timezone` (IANA name).
    """

    order: str
    member: str
    time: str
    quantity: str
    price: str | None = None
    cancel_prefix: str | None = None
    channel: str = "online"
    timezone: str = "UTC"
    time_format: str | None = None
    line_total: str | None = None


CDNOW = LineMapping(
    order="order_id",
    member="customer_id",
    time="date",
    quantity="cds",
    line_total="dollars",
    time_format="%Y%m%d",
)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: lines read and quarantined, then the members and orders ingests."""

    source: str
    lines: int
    lines_quarantined: int
    line_quarantine_file: Path | None
    line_examples: tuple[str, ...]
    returns: int
    members: IngestReport
    orders: IngestReport

    @property
    def orders_stored(self) -> int:
        """Orders newly stored in the lake by this import."""
        return self.orders.stored

    @property
    def derived_members(self) -> int:
        """Members newly derived from first purchases and stored by this import."""
        return self.members.stored

    def describe(self) -> str:
        """The line counts, rejected lines, then the members and orders ingest reports."""
        aggregated = self.lines - self.lines_quarantined
        lines = [
            f"{self.source}: lines read {self.lines:,} = aggregated {aggregated:,} + "
            f"quarantined {self.lines_quarantined:,}",
            f"  -> {self.orders.read:,} orders ({self.returns:,} returns), "
            f"{self.orders_stored:,} orders stored, "
            f"{self.derived_members:,} derived members stored",
        ]
        if self.lines_quarantined:
            lines.append(
                f"  rejected lines (first {len(self.line_examples)} of "
                f"{self.lines_quarantined:,}; all in {self.line_quarantine_file}):"
            )
            lines += [f"    {example}" for example in self.line_examples]
        return "\n".join([*lines, self.members.describe(), self.orders.describe()])


def import_orderlines(
    settings: Settings, path: Path | str, mapping: LineMapping, *, currency: str
) -> ImportReport:
    """Aggregate a CSV or Parquet order-lines export into orders (and derived members) and
    ingest them; `currency` (ISO 4217) is the currency of its prices."""
    path = readers.existing_file(path)
    if path.stat().st_size == 0:
        raise ContractError(f"{path} is empty; an order-lines export needs a header and lines")
    parquet = path.suffix.lower() in readers.PARQUET_SUFFIXES
    reader = "read_parquet" if parquet else "read_csv"
    # malformed CSV lines (field count, encoding) go to DuckDB's reject_errors, not an error
    options = "" if parquet else ", all_varchar = true, header = true, store_rejects = true"
    with _duckdb() as con:
        try:
            con.execute(
                "CREATE TABLE lines AS SELECT row_number() OVER () AS _row, * "
                f"FROM {reader}({_literal(str(path))}{options})"
            )
        except duckdb.Error as error:
            kind = "Parquet" if parquet else "CSV"
            raise ContractError(
                f"{path} cannot be read as {kind} ({str(error).splitlines()[0]}); export it again "
                "as a complete Parquet file or a UTF-8 CSV with a header row"
            ) from None
        if not parquet:
            _set_aside_malformed(con)
        return _import_lines(settings, con, str(path), mapping, currency)


def _set_aside_malformed(con: duckdb.DuckDBPyConnection) -> None:
    """Move the CSV lines DuckDB rejected into `malformed` (`_row`, `_reason`) and renumber
    `lines` so that `_row` is each line's data row in the file again."""
    got = "' (got ''' || left(csv_line, 80) || ''')'"
    con.execute(
        f"""CREATE TABLE malformed AS
        SELECT line - 1 AS _row, string_agg(DISTINCT reason, '; ') AS _reason FROM (
            SELECT line, {_MALFORMED} || {got} AS reason FROM reject_errors
        ) GROUP BY line"""
    )
    # the r-th accepted line is data row r + (malformed rows before it)
    con.execute(
        """CREATE TABLE shift AS SELECT before, max(n) AS n FROM (
            SELECT _row - row_number() OVER (ORDER BY _row) AS before,
                   row_number() OVER (ORDER BY _row) AS n FROM malformed) GROUP BY before"""
    )
    con.execute(
        "CREATE OR REPLACE TABLE lines AS SELECT l._row + coalesce(s.n, 0) AS _row, "
        "l.* EXCLUDE (_row) FROM lines l ASOF LEFT JOIN shift s ON l._row > s.before"
    )


_MALFORMED = """CASE
    WHEN error_type = 'TOO MANY COLUMNS' THEN 'line: has more fields than the header'
    WHEN error_type = 'MISSING COLUMNS' THEN 'line: has fewer fields than the header'
    WHEN error_type IN ('INVALID ENCODING', 'INVALID UNICODE') THEN coalesce(column_name, 'line')
        || ': is not UTF-8 text; save the export as UTF-8'
    ELSE 'line: ' || error_message END"""


def import_cdnow(settings: Settings, path: Path | str) -> ImportReport:
    """Import CDNOW_master.txt or CDNOW_sample.txt: the records of one customer on one day are
    one order `cdnow-<customer>-<YYYYMMDD>` (dollars and CDs summed: the data's convention of one
    purchase day), member ids as in the file (leading zeros kept), dates at 00:00 UTC, amounts
    in USD."""
    path = readers.existing_file(path)
    frame = read_cdnow(path)
    with _duckdb() as con:
        con.register("cdnow", frame)
        con.execute("CREATE TABLE lines AS SELECT * FROM cdnow")
        con.unregister("cdnow")
        return _import_lines(settings, con, str(path), CDNOW, CDNOW_CURRENCY)


def read_cdnow(path: Path) -> pd.DataFrame:
    """The CDNOW log as text columns `_row`, order_id, customer_id, date, cds, dollars.

    The master file has a header and 4 columns; the sample file has no header and 5 (master id,
    sample id, date, cds, dollars): the master customer id is kept. `_row` counts data rows.
    order_id is `cdnow-<customer>-<date>`, shared by the records of one customer on one day, so
    the aggregation makes them one order (the purchase day the CDNOW literature counts); the
    master and the sample give the same ids to the same purchases.
    """
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ContractError(
            f"{path} cannot be read as the CDNOW log ({str(error).strip()}); use the original "
            "CDNOW_master.txt or CDNOW_sample.txt"
        ) from None
    if len(raw) and raw.iloc[0, 0] == "customer_id":
        raw = raw.iloc[1:].reset_index(drop=True)
    if raw.shape[1] == 5:
        raw = raw.drop(columns=1)
    if raw.shape[1] != 4:
        raise ContractError(
            f"{path} does not look like CDNOW: expected 4 columns (customer_id date "
            f"number_of_cds dollar_value) or 5 (the sample file), found {raw.shape[1]}"
        )
    frame = pd.DataFrame(raw.to_numpy(), columns=["customer_id", "date", "cds", "dollars"])
    frame.insert(0, "_row", range(1, len(frame) + 1))
    frame.insert(1, "order_id", "cdnow-" + frame["customer_id"] + "-" + frame["date"])
    return frame


@contextmanager
def _duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB database in a temporary folder, so aggregation of big exports spills to disk."""
    with tempfile.TemporaryDirectory(prefix="memberscore-import-") as folder:
        con = duckdb.connect(str(Path(folder) / "import.duckdb"))
        try:
            con.execute(f"SET temp_directory = {_literal(folder)}")
            con.execute("SET memory_limit = '1GB'")
            yield con
        finally:
            con.close()


def _import_lines(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    source: str,
    mapping: LineMapping,
    currency: str,
) -> ImportReport:
    """Parse, quarantine and aggregate the `lines` table (and the `malformed` lines set aside
    while reading, if any), then ingest members and orders."""
    con.execute("CREATE TABLE IF NOT EXISTS malformed (_row BIGINT, _reason VARCHAR)")
    check_mapping(mapping, _columns(con, "lines"))
    check_currency(settings.lake_dir, contract.ORDERS, currency)
    con.execute(f"SET TimeZone = {_literal(mapping.timezone)}")
    con.execute(parse_sql(mapping))
    stored = None
    if lake.has_table(settings.lake_dir, contract.ORDERS):
        stored = lake.glob(settings.lake_dir, contract.ORDERS)
    con.execute(order_checks_sql(mapping, stored))
    run_id = new_run_id()
    rejected = _quarantine_lines(con, settings.quarantine_dir / "orderlines", source, run_id)
    con.execute(orders_sql(mapping))
    members = ingest_chunks(
        settings,
        contract.MEMBERS,
        _derived_members(con, settings, source),
        assume_timezone="UTC",
        currency=currency,
        run_id=run_id,
    )
    orders = ingest_chunks(
        settings,
        contract.ORDERS,
        _query_source(con, "SELECT * FROM orders ORDER BY ordered_at, order_id", source, settings),
        assume_timezone="UTC",
        currency=currency,
        run_id=run_id,
    )
    (lines,) = _one(con, "SELECT (SELECT count(*) FROM lines) + (SELECT count(*) FROM malformed)")
    (returns,) = _one(con, "SELECT count(*) FROM orders WHERE is_return")
    return ImportReport(source, lines, *rejected, returns, members, orders)


def check_mapping(mapping: LineMapping, columns: list[str]) -> None:
    """Refuse a mapping naming absent columns, an unknown channel or time zone."""
    if (mapping.price is None) == (mapping.line_total is None):
        raise ContractError("give exactly one of a unit price column or a line total column")
    wanted = [mapping.order, mapping.member, mapping.time, mapping.quantity]
    wanted.append(mapping.price or mapping.line_total or "")
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise ContractError(
            f"order lines: column(s) {', '.join(missing)} not found; the file has "
            f"{', '.join(columns) or 'no columns'}"
        )
    if mapping.channel not in contract.ORDER_CHANNELS:
        raise ContractError(
            f"channel {mapping.channel!r} must be one of {', '.join(contract.ORDER_CHANNELS)}"
        )
    try:
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContractError(
            f"unknown time zone {mapping.timezone!r}; use an IANA name such as Europe/London"
        ) from None


def parse_sql(mapping: LineMapping) -> str:
    """SQL creating `parsed`: one typed row per line plus `_reason` (NULL when usable)."""
    text = {
        key: f"NULLIF(trim(CAST({_ident(name)} AS VARCHAR)), '')"
        for key, name in _mapped(mapping).items()
    }
    when = "TRY_CAST(t AS TIMESTAMPTZ)"
    if mapping.time_format:
        when = f"CAST(try_strptime(t, {_literal(mapping.time_format)}) AS TIMESTAMPTZ)"
    amount = "abs(quantity * price)" if mapping.price else "abs(price)"
    prefix = _literal(mapping.cancel_prefix) if mapping.cancel_prefix else "NULL"
    return f"""
    CREATE TABLE parsed AS
    WITH raw AS (
        SELECT _row, {text["order"]} AS o, {text["member"]} AS m, {text["time"]} AS t,
               {text["quantity"]} AS q, {text["price"]} AS p
        FROM lines
    ), typed AS (
        SELECT _row, o AS order_id, regexp_replace(m, '^(\\d+)\\.0+$', '\\1') AS member_id,
               timezone('UTC', {when}) AS ordered_at, t, q, p,
               TRY_CAST(q AS DOUBLE) AS quantity, TRY_CAST(p AS DOUBLE) AS price
        FROM raw
    )
    SELECT _row, order_id, member_id, ordered_at, quantity, {amount} AS line_amount,
           coalesce(quantity < 0 OR starts_with(order_id, {prefix}), false) AS is_return,
           NULL::VARCHAR AS order_key, NULLIF(concat_ws('; ', {_reasons(mapping)}), '') AS _reason
    FROM typed
    """


def _mapped(mapping: LineMapping) -> dict[str, str]:
    price = mapping.price or mapping.line_total or ""
    return {
        "order": mapping.order,
        "member": mapping.member,
        "time": mapping.time,
        "quantity": mapping.quantity,
        "price": price,
    }


def _reasons(mapping: LineMapping) -> str:
    """SQL expressions, one per rule, yielding "column: rule (got 'value')" or NULL."""
    names = {key: _literal(name) for key, name in _mapped(mapping).items()}

    def got(value: str) -> str:
        return f"' (got ''' || left(coalesce({value}, ''), 60) || ''')'"

    overflow = "NULL"
    if mapping.price:
        overflow = (
            f"CASE WHEN abs(quantity) <= {MAX_QUANTITY!r} AND isfinite(price) "
            "AND NOT isfinite(quantity * price) "
            f"THEN {names['quantity']} || ' × ' || {names['price']} || ': the line amount "
            f"overflows' || ' (got ''' || q || ''' × ''' || p || ''')' END"
        )
    rules = [
        f"CASE WHEN order_id IS NULL THEN {names['order']} || ': is required' END",
        f"CASE WHEN member_id IS NULL THEN {names['member']} || ': is required (a line "
        "without a customer id cannot be tied to a member)' END",
        f"CASE WHEN t IS NOT NULL AND ordered_at IS NULL THEN {names['time']} || "
        f"': must be a timestamp' || {got('t')} END",
        f"CASE WHEN t IS NULL THEN {names['time']} || ': is required' END",
        f"CASE WHEN quantity IS NULL THEN {names['quantity']} || ': must be a number' "
        f"|| {got('q')} WHEN NOT isfinite(quantity) OR abs(quantity) > {MAX_QUANTITY!r} "
        f"THEN {names['quantity']} || ': must be a finite number within ±{MAX_QUANTITY:g}' "
        f"|| {got('q')} END",
        f"CASE WHEN price IS NULL THEN {names['price']} || ': must be a number' || {got('p')} "
        f"WHEN NOT isfinite(price) THEN {names['price']} || ': must be a finite number' "
        f"|| {got('p')} WHEN price < 0 THEN {names['price']} || ': must be >= 0' || {got('p')} END",
        overflow,
    ]
    return ", ".join(rules)


def order_checks_sql(mapping: LineMapping, stored_orders: str | None) -> str:
    """SQL giving the usable lines of `parsed` their `order_key` (the order id, `<id>-return`
    for the return part of a mixed order) and quarantining whole orders: an id of several
    customers, an id the lake (Parquet glob `stored_orders`) holds for another member, totals
    that overflow."""
    order = _literal(mapping.order)
    lake_join, lake_member = "", "NULL::VARCHAR"
    if stored_orders is not None:
        lake_join = (
            "LEFT JOIN (SELECT order_id AS stored_id, member_id AS stored_member FROM "
            f"read_parquet({_literal(stored_orders)})) s "
            "ON s.stored_id = t.order_key AND s.stored_member <> t.member_id"
        )
        lake_member = "s.stored_member"
    return f"""
    CREATE TABLE checked AS
    WITH ids AS (
        SELECT order_id, min(member_id) AS first_member,
               max(member_id) AS last_member,
               bool_or(is_return) AND NOT bool_and(is_return) AS mixed
        FROM parsed WHERE _reason IS NULL GROUP BY order_id
    ), keyed AS (
        SELECT p.*, i.* EXCLUDE (order_id), CASE WHEN p.is_return AND i.mixed
            THEN p.order_id || '-return' ELSE p.order_id END AS key
        FROM parsed p JOIN ids i USING (order_id) WHERE p._reason IS NULL
    ), totals AS (
        SELECT key AS order_key, any_value(order_id) AS order_id,
               any_value(member_id) AS member_id,
               any_value(first_member) AS first_member, any_value(last_member) AS last_member,
               sum(abs(quantity)) AS items, sum(line_amount) AS amount
        FROM keyed GROUP BY key
    ), verdicts AS (
        SELECT t.order_key, CASE
            WHEN t.first_member <> t.last_member THEN {order} || ': order '''
                || left(t.order_id, 60) || ''' has lines of several customers (e.g. '
                || left(t.first_member, 60) || ' and ' || left(t.last_member, 60)
                || '); an order id must belong to one customer'
            WHEN {lake_member} IS NOT NULL THEN {order} || ': order '''
                || left(t.order_key, 60) || ''' is already stored for member '''
                || left({lake_member}, 60) || ''''
            WHEN t.items > {MAX_QUANTITY!r} THEN {_literal(mapping.quantity)} || ': order '''
                || left(t.order_key, 60) || ''' totals more than {MAX_QUANTITY:g} items'
            WHEN NOT isfinite(t.amount) THEN {_literal(_mapped(mapping)["price"])} || ': order '''
                || left(t.order_key, 60) || ''' amount overflows'
            END AS reason
        FROM totals t {lake_join}
    )
    SELECT p.* EXCLUDE (order_key, _reason), k.key AS order_key,
           coalesce(p._reason, v.reason) AS _reason
    FROM parsed p LEFT JOIN keyed k USING (_row) LEFT JOIN verdicts v ON v.order_key = k.key;
    DROP TABLE parsed;
    ALTER TABLE checked RENAME TO parsed;
    """


def orders_sql(mapping: LineMapping) -> str:
    """SQL creating `orders` (canonical columns) from the usable lines of `parsed`."""
    return f"""
    CREATE TABLE orders AS
    WITH good AS (SELECT * EXCLUDE (order_id) FROM parsed WHERE _reason IS NULL)
    SELECT order_key AS order_id, member_id, min(ordered_at) AS ordered_at,
           round(sum(line_amount), 6) AS amount,
           0.0 AS discount, CAST(round(sum(abs(quantity))) AS BIGINT) AS items,
           {_literal(mapping.channel)} AS channel, NULL::VARCHAR AS coupon_id, is_return
    FROM good
    GROUP BY ALL
    """


def _quarantine_lines(
    con: duckdb.DuckDBPyConnection, folder: Path, source: str, run_id: str
) -> tuple[int, Path | None, tuple[str, ...]]:
    """Write unusable lines (and malformed ones) with their reasons to `<folder>/<run id>.csv`."""
    rejected = f"""SELECT l._row, p._reason, {_literal(source)} AS _source, l.* EXCLUDE (_row)
        FROM lines l JOIN parsed p USING (_row) WHERE p._reason IS NOT NULL
        UNION ALL BY NAME SELECT _row, _reason, {_literal(source)} AS _source FROM malformed"""
    (count,) = _one(con, f"SELECT count(*) FROM ({rejected})")
    if not count:
        return 0, None, ()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.csv"
    con.execute(
        f"COPY (SELECT * FROM ({rejected}) ORDER BY _row) "
        f"TO {_literal(str(path))} (HEADER, DELIMITER ',')"
    )
    examples = con.execute(
        f"SELECT _row, _reason FROM ({rejected}) ORDER BY _row LIMIT ?", [EXAMPLES]
    ).fetchall()
    return count, path, tuple(f"row {row}: {reason}" for row, reason in examples)


def _derived_members(
    con: duckdb.DuckDBPyConnection, settings: Settings, source: str
) -> readers.Source:
    """Members first seen in `orders` and not yet in the lake, as raw member chunks."""
    known = ""
    if lake.has_table(settings.lake_dir, contract.MEMBERS):
        stored = _literal(lake.glob(settings.lake_dir, contract.MEMBERS))
        known = f"WHERE member_id NOT IN (SELECT member_id FROM read_parquet({stored}))"
    tier = min(settings.tier_thresholds, key=lambda pair: pair[1])[0]
    query = f"""
    SELECT member_id, min(ordered_at) AS registered_at, 'unknown' AS acquisition_channel,
           'unknown' AS region, {_literal(tier)} AS tier, false AS consent_marketing,
           false AS consent_personalization, true AS is_derived
    FROM orders {known} GROUP BY member_id ORDER BY registered_at, member_id
    """
    return _query_source(con, query, f"{source} (derived members)", settings)


def _query_source(
    con: duckdb.DuckDBPyConnection, query: str, name: str, settings: Settings
) -> readers.Source:
    (total,) = _one(con, f"SELECT count(*) FROM ({query})")
    return readers.Source(name, total, _batches(con, query, settings.chunk_rows))


def _batches(con: duckdb.DuckDBPyConnection, query: str, rows: int) -> Iterator[readers.Chunk]:
    relation = con.sql(query)
    # DuckDB 2 renamed fetch_arrow_reader to to_arrow_reader
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    first = 1
    for batch in reader(rows):
        frame = batch.to_pandas()
        yield readers.Chunk(frame, first)
        first += len(frame)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall() if row[0] != "_row"]


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple:
    (row,) = con.execute(query).fetchall()  # aggregate queries return exactly one row
    return row


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
