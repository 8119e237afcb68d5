"""moto's server (pinned in requirements.txt) with complexity fixes.

The local run and the tests use moto as the AWS emulator. Its hot
paths grow with the data instead of with the request, which made the
benchmarks measure moto rather than our code (docs/BENCHMARKS.md):

* DynamoDB `Query` on a table's key walks and sorts *every* item of the
  table to find one partition. Here it reads the partition only, as
  DynamoDB does. Index queries and everything else are moto's own code.
* An SQS long poll on a FIFO queue whose visible messages all belong to
  message groups another consumer holds spun for the whole wait, scanning
  every message each time round. Here it sleeps until a message arrives or
  is deleted (which can free a group), rechecking every 100 ms because a
  visibility timeout expires without a wake-up.
* DynamoDB `TransactWriteItems` deep-copied every table it writes to
  before each transaction, to roll back on failure: a batched write into
  a table of 100,000 items took seconds. Here it backs up the items the
  transaction names and puts them back if it fails.
* SQS checks each message's visibility and delay by building `datetime`
  objects per message per receive; a FIFO queue holding a thousand orders
  spent most of moto's CPU there. Here "now" comes from `time.time()`,
  the same instant in the same unit.

One fix is about behaviour, toward AWS's: DynamoDB applies each write to an
item atomically, while moto's threaded server lets a concurrent request
see an `UpdateItem` half done (the item created with its key only, the
update not yet applied) or let two conditional writes both pass. Item reads
and writes are serialised here, as AWS's per-item atomicity requires.

Otherwise behaviour (results, errors, ordering) is unchanged: the same
answers in the same order, computed with less work. Run exactly like `moto_server`.
"""

import copy
import functools
import inspect
import sys
import threading
import time

import moto.core.utils as core_utils
import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as dynamodb_table
from moto.server import main

_original_unix_time = core_utils.unix_time


def unix_time(dt=None):
    if dt is None:
        return time.time()
    return _original_unix_time(dt)


def unix_time_millis(dt=None):
    return unix_time(dt) * 1000.0


for module in (core_utils, sqs_models, dynamodb_table):
    if hasattr(module, "unix_time"):
        module.unix_time = unix_time
    if hasattr(module, "unix_time_millis"):
        module.unix_time_millis = unix_time_millis

Queue = sqs_models.Queue
_original_delete_message = Queue.delete_message


def wait_for_messages(self, timeout):
    with self._messages_lock:
        self._messages_lock.wait(timeout=min(timeout, 0.1))


def delete_message(self, receipt_handle):
    _original_delete_message(self, receipt_handle)
    with self._messages_lock:
        self._messages_lock.notify_all()


Queue.wait_for_messages = wait_for_messages
Queue.delete_message = delete_message

Table = dynamodb_table.Table
_original_query = Table.query
_original_all_items = Table.all_items
_query_signature = inspect.signature(_original_query)
# The partition a base-table query on this thread is reading, if any.
_partition = threading.local()


def all_items(self):
    wanted = getattr(_partition, "wanted", None)
    if wanted is None or wanted[0] is not self:
        return _original_all_items(self)
    hash_key = wanted[1]
    if hash_key not in self.items:  # `items` is a defaultdict: do not create
        return []
    partition = self.items[hash_key]
    if not self.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)


def query(self, *args, **kwargs):
    bound = _query_signature.bind(self, *args, **kwargs)
    hash_key = bound.arguments.get("hash_key")
    if bound.arguments.get("index_name") or hash_key is None:
        return _original_query(self, *args, **kwargs)
    _partition.wanted = (self, hash_key)
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        _partition.wanted = None


Table.all_items = all_items
Table.query = query

_original_transact_write_items = DynamoDBBackend.transact_write_items


class _TablesUncopied:
    """`copy` as moto's `transact_write_items` sees it: its backup of a whole
    table is the table itself (the wrapper below backs up the items)."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def transact_write_items(self, transact_items):
    backup = []
    for entry in transact_items:
        try:
            ((op_type, op),) = entry.items()
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            before = self.get_item(op["TableName"], key)
        except Exception:  # moto's own code reports what is wrong with it
            continue
        backup.append((op["TableName"], key, copy.deepcopy(before)))
    dynamodb_models.copy = _TablesUncopied
    try:
        return _original_transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, before in reversed(backup):
            if before is None:
                self.get_table(table_name).delete_item(
                    *self.get_keys_value(self.get_table(table_name), key)
                )
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = transact_write_items

_items_lock = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _items_lock:
            return method(*args, **kwargs)

    return locked


for name in (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
):
    setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))

if __name__ == "__main__":
    sys.exit(main())
