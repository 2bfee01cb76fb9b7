"""The erasure log, and rewriting a Parquet file without some members' rows.

`<data>/privacy/erasures.jsonl` holds one JSON line per erased member and request:
`{"member": <hash>, "at": <UTC ISO time>, "by": "cli" | "api", "stores": {store: rows removed},
"pending": [stores not erased yet]}`. It never holds a member id: `member` is the hex
HMAC-SHA256 of the id keyed with this installation's salt, `<data>/privacy/salt` (32 random
bytes as hex, created with the first erasure, readable by the owner only). Without the salt
the log cannot be turned back into ids by hashing guessed ids (ids such as m0000003 are easy to
guess, so a plain sha256 would not hide them). Losing the salt makes the log useless: it is
backed up with the data dir, and a log without its salt is an error, never a new salt.

Ingest reads the log (`ErasedIds`) to skip the rows of erased members, so a re-ingest of an
old export does not bring them back; a request the API could not finish (`pending`) is
finished by the next `memberscore erase --pending`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from memberscore import journal
from memberscore.errors import ContractError

FOLDER = "privacy"
LOG_FILE = "erasures.jsonl"
SALT_FILE = "salt"
MEMBER_ID = "member_id"


def log_path(data_dir: Path) -> Path:
    """The erasure log of the data dir."""
    return data_dir / FOLDER / LOG_FILE


def salt(data_dir: Path, *, create: bool = False) -> bytes | None:
    """The installation's salt; made on first use when `create`, else None when there is none.
    ContractError when the log exists but its salt is gone (a new salt would void the log)."""
    path = data_dir / FOLDER / SALT_FILE
    if path.is_file():
        return bytes.fromhex(path.read_text().strip())
    if log_path(data_dir).is_file():
        raise ContractError(
            f"{path} is missing but the erasure log {log_path(data_dir)} exists: restore the salt "
            "from the backup of the data dir (without it erased members cannot be recognised)"
        )
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of two processes creating it at once, one salt wins and both use it
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(handle, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def member_hash(key: bytes, member_id: str) -> str:
    """The log's name for `member_id`: hex HMAC-SHA256 keyed with the salt."""
    return hmac.new(key, member_id.encode("utf-8"), hashlib.sha256).hexdigest()


def append(data_dir: Path, entries: Iterable[dict]) -> Path:
    """Append entries (one line each, under a lock, flushed to disk); returns the log path."""
    path = log_path(data_dir)
    journal.append_lines(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    return path


def read(data_dir: Path) -> list[dict]:
    """The log's entries, oldest first; a line cut short by a killed write is skipped."""
    path = log_path(data_dir)
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("member"), str):
            entries.append(entry)
    return entries


def pending(data_dir: Path) -> dict[str, list[str]]:
    """Hash → stores still to erase, for members whose latest entry left some pending."""
    latest = {entry["member"]: entry for entry in read(data_dir)}
    return {h: list(e["pending"]) for h, e in latest.items() if e.get("pending")}


@dataclass(frozen=True)
class ErasedIds:
    """The erased members of a data dir, to recognise their ids by hash."""

    key: bytes
    hashes: frozenset[str]

    @classmethod
    def of(cls, data_dir: Path) -> ErasedIds | None:
        """The erased members, or None when nobody was ever erased (nothing to check)."""
        hashes = frozenset(entry["member"] for entry in read(data_dir))
        key = salt(data_dir)
        return None if not hashes or key is None else cls(key, hashes)

    def mask(self, member_ids: pd.Series) -> np.ndarray:
        """True where the id (surrounding spaces stripped, as ingest parses ids) is erased;
        each distinct id is hashed once."""
        codes, uniques = pd.factorize(member_ids.astype("string").str.strip())
        erased = np.array(
            [member_hash(self.key, str(u)) in self.hashes for u in uniques] + [False], dtype=bool
        )
        return erased[codes]  # code -1 (no id) picks the trailing False

    def known(self, member_ids: Iterable[str]) -> dict[str, str]:
        """Hash → id of the erased ones among `member_ids`."""
        found = {member_hash(self.key, m): m for m in set(member_ids)}
        return {h: m for h, m in found.items() if h in self.hashes}


def member_counts(path: Path, member_ids: Collection[str], column: str = MEMBER_ID) -> Counter:
    """Rows of each of `member_ids` in the Parquet file `path` (only `column` is read)."""
    if column not in pq.read_schema(path).names:
        return Counter()
    values = pq.read_table(path, columns=[column]).column(column)
    hit = pc.is_in(pc.cast(values, pa.string()), value_set=pa.array(list(member_ids), pa.string()))
    found = pc.filter(values, pc.fill_null(hit, False)).to_pylist()
    return Counter(str(v) for v in found)


def without_members(
    path: Path, member_ids: Collection[str], *, column: str = MEMBER_ID, drop_empty: bool = False
) -> Counter:
    """Rewrite the Parquet file `path` without the rows whose `column` is one of `member_ids`:
    a new file beside it, renamed over it once written (readers see the old or the new file,
    never half of one). Returns the rows removed per member id; untouched files are not
    rewritten. With `drop_empty` a file left without rows is deleted."""
    removed = member_counts(path, member_ids, column) if member_ids else Counter()
    if not removed:
        return removed
    source = pq.ParquetFile(path)
    temp = path.with_name(path.name + ".erasing")
    wanted = pa.array(list(member_ids), pa.string())
    kept = 0
    with pq.ParquetWriter(temp, source.schema_arrow) as writer:
        for batch in source.iter_batches():
            hit = pc.is_in(pc.cast(batch.column(column), pa.string()), value_set=wanted)
            rows = batch.filter(pc.invert(pc.fill_null(hit, False)))
            kept += rows.num_rows
            writer.write_table(pa.Table.from_batches([rows], schema=source.schema_arrow))
    if drop_empty and kept == 0:
        temp.unlink()
        path.unlink()
    else:
        os.replace(temp, path)
    return removed
