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

import functools
import inspect
import sys
import threading
import time

import moto.core.utils as core_utils
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
