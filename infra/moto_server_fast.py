"""moto's server (pinned in requirements.txt) with complexity fixes.

The local run and the tests use moto as the AWS emulator. Its hot
paths grow with the data instead of with the request, which made the
benchmarks measure moto rather than our code (docs/BENCHMARKS.md):

* DynamoDB `Query` on a table's key walks and sorts *every* item of the
  table to find one partition. Here it reads the partition only, as
  DynamoDB does, sorted by the keys' plain values. Index queries and
  everything else are moto's own code.
* A read that answers items (`Query`, `GetItem`, `BatchGetItem`) went
  through moto's model-driven serializer, ~0.7 ms an item: 200 items cost
  140 ms. Here the same JSON is written directly (16 ms).
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

Two fixes are about behaviour, toward AWS's. SQS FIFO deduplication holds
for five minutes after a message was sent, even once it was received and
deleted (moto compares only with messages still in the queue). And DynamoDB applies each write to an
item atomically, while moto's threaded server lets a concurrent request
see an `UpdateItem` half done (the item created with its key only, the
update not yet applied) or let two conditional writes both pass. Item reads
and writes are serialised here, as AWS's per-item atomicity requires.

IAM, when enforced (moto's own switch: the `INITIAL_NO_AUTH_ACTION_COUNT`
environment variable, or `POST /moto-api/reset-auth` with a count; the
tests and the local run turn it on once the stack is deployed), is checked
as AWS checks it for the calls this project makes, where moto differs:

* DynamoDB requests are checked against the table's ARN (moto checks them
  against "*", which no statement naming a table matches), an index
  query against `<table ARN>/index/<name>`, a secret's actions
  against the secret's ARN, an SNS topic's (`sns:Publish`) against
  the topic's ARN, and SES v2's `SendEmail` (`ses:SendEmail`) against the
  ARN of its From address's identity. An SNS request's signature is checked over its body as
  sent (moto re-encodes the parsed form as Python's SDK would, which
  another SDK's signature does not match).
* A transaction needs each of its items' own actions (`PutItem`,
  `UpdateItem`, `DeleteItem`, `ConditionCheckItem`, `GetItem`) on each
  item's table, as in AWS (there is no IAM action named after the
  transaction); SQS batch calls need their single-message action
  (`SendMessageBatch` needs `sqs:SendMessage`); a batch read or write is
  checked on each table it names.
* An `AWS::IAM::User`'s `Policies` are attached when the stack creates
  the user and go with it when the stack deletes it (moto drops them; a
  stack update does not change them here).
* A role's or user's inline policy made by CloudFormation is stored as
  JSON text, as IAM stores it (moto keeps the dict, which its own checks
  and `GetRolePolicy` cannot read).
* The access key `local` / `local-secret` belongs to the IAM user
  `local-admin`, allowed everything: it stands for the deployer's own
  credentials, so setup and the tests' own checks keep working when IAM
  is enforced. Any other unknown key is refused, as in AWS.
* A refusal of a JSON-protocol request (DynamoDB, SQS, SES v2) is answered in
  JSON (`AccessDeniedException`), as AWS does; moto answers XML, which the
  SDKs report as an unreadable response instead of AccessDenied.
* With `IAM_RECORD_FILE` set, every check (principal, action, resource,
  allowed or not, enforced or not) is appended to that file as a JSON line:
  what each identity really called, for the action audit test.

`/moto-api/data.json` (every model's public attributes, where the tests
read the mail SES sent) leaves out an attribute whose reading raises
anything: moto leaves out only TypeError, AttributeError and ValueError,
and a deployed stack holds models whose properties raise others, which
made the whole dump an HTTP 500.

moto evaluates neither `Condition` elements of identity policies nor
resource-based policies; the template uses neither for these calls.

Otherwise behaviour (results, errors, ordering) is unchanged: the same
answers in the same order, computed with less work. Run exactly like `moto_server`.
"""

import base64
import copy
import functools
import decimal
import email.utils
import inspect
import json
import os
import sys
import threading
import time

import moto.core.utils as core_utils
import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as dynamodb_table
from moto.dynamodb.responses import DynamoResult
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

_original_add_message = Queue.add_message


def add_message(self, message):
    # AWS accepts but never delivers a FIFO message whose deduplication id
    # was sent in the last five minutes, whether or not the first one is
    # still in the queue; moto only compares with messages still queued,
    # so a command re-sent after the first was consumed got through.
    if self.fifo_queue and message.deduplication_id:
        key = message.deduplication_id
        if self.attributes.get("DeduplicationScope") == "messageGroup":
            key = (message.group_id, key)
        window_ms = sqs_models.DEDUPLICATION_TIME_IN_SECONDS * 1000
        now = message.sent_timestamp
        with self._messages_lock:
            sent = self.__dict__.setdefault("_deduplication_sent", {})
            for old in [k for k, at in sent.items() if now - at >= window_ms]:
                del sent[old]
            if key in sent:
                return
            sent[key] = now
    _original_add_message(self, message)


Queue.add_message = add_message

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
    # Sorted by the keys' plain values (C comparisons), not by moto's
    # DynamoType objects, whose Python-level comparisons made a query on a
    # partition of 10,000 items take a tenth of a second.
    return sorted(partition.values(), key=lambda item: _plain_key(item.range_key))


def _plain_key(key):
    if key.type == "N":
        return decimal.Decimal(key.value)
    return key.value


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

_original_dynamo_execute = DynamoResult.execute_result
# Reads whose answer is items: moto's model-driven serializer walks every
# attribute of every item through botocore's shapes (~0.7 ms an item), so
# a page of 200 items took a seventh of a second. Their results are plain
# DynamoDB JSON already; written directly, the same body.
_PLAIN_READS = {"Query", "GetItem", "BatchGetItem"}


def _plain_json(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not plain JSON")


def dynamo_execute_result(self, context):
    if str(context.operation_model.name) in _PLAIN_READS and isinstance(self.result, dict):
        try:
            body = json.dumps(self.result, default=_plain_json)
        except (TypeError, ValueError):
            return _original_dynamo_execute(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return _original_dynamo_execute(self, context)


DynamoResult.execute_result = dynamo_execute_result

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


# ----------------------------------------------------------------- IAM

from moto import settings  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.core.responses import BaseResponse  # noqa: E402
from moto.iam.access_control import IAMRequest  # noqa: E402
import moto.iam.models as iam_models  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

LOCAL_ADMIN = ("local-admin", "local", "local-secret")
DEFAULT_ACCOUNT = "123456789012"


def _ensure_local_admin():
    """The deployer's stand-in; created again if the IAM state was reset."""
    backend = iam_backends[DEFAULT_ACCOUNT]["aws"]
    name, key_id, secret = LOCAL_ADMIN
    if name in backend.users:
        return
    backend.create_user(region_name="us-east-1", user_name=name, path="/", tags=[])
    backend.put_user_policy(
        name,
        "everything",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    key = backend.create_access_key(name)
    key.access_key_id = key_id
    key.secret_access_key = secret


def _policy_as_text(put_policy):
    """CloudFormation hands moto a role's or user's inline policy as a dict;
    IAM (and moto's own checks and GetRolePolicy) expect JSON text."""

    @functools.wraps(put_policy)
    def put(self, policy_name, policy_json):
        if not isinstance(policy_json, str):
            policy_json = json.dumps(policy_json)
        return put_policy(self, policy_name, policy_json)

    return put


for _cls in (iam_models.Role, iam_models.User, iam_models.Group):
    _cls.put_policy = _policy_as_text(_cls.put_policy)


_original_user_from_cloudformation = iam_models.User.create_from_cloudformation_json.__func__


def _user_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    user = _original_user_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    for policy in cloudformation_json.get("Properties", {}).get("Policies") or []:
        user.put_policy(policy["PolicyName"], policy["PolicyDocument"])
    return user


iam_models.User.create_from_cloudformation_json = classmethod(_user_from_cloudformation)
_original_user_delete = iam_models.User.delete_from_cloudformation_json.__func__


def _user_delete_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # The stack's own inline policies go with the user, as in AWS.
    user = iam_backends[account_id]["aws"].users.get(resource_name)
    if user is not None:
        user.policies.clear()
    return _original_user_delete(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


iam_models.User.delete_from_cloudformation_json = classmethod(_user_delete_from_cloudformation)


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _dynamodb_checks(handler, action):
    body = handler.body if isinstance(handler.body, dict) else {}

    def arn(table):
        return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}"

    if action in ("TransactWriteItems", "TransactGetItems"):
        checks = []
        for entry in body.get("TransactItems") or []:
            for kind, op in entry.items():
                checks.append((_TRANSACT_ACTIONS.get(kind, kind), arn(op.get("TableName", "*"))))
        return checks or [(action, "*")]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, arn(table)) for table in (body.get("RequestItems") or {})] or [(action, "*")]
    table = body.get("TableName")
    if not table:
        return [(action, "*")]
    if body.get("IndexName"):
        return [(action, f"{arn(table)}/index/{body['IndexName']}")]
    return [(action, arn(table))]


def _secretsmanager_checks(handler, action):
    """A secret's actions against the secret's ARN (moto checks them against
    "*", which no statement naming a secret matches)."""
    body = handler.body
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            body = {}
    secret = (body or {}).get("SecretId") if isinstance(body, dict) else None
    if not secret:
        return [(action, "*")]
    if not secret.startswith("arn:"):
        secret = f"arn:aws:secretsmanager:{handler.region}:{handler.current_account}:secret:{secret}"
    return [(action, secret)]


def _sns_checks(handler, action):
    """A topic's actions against the topic's ARN (moto checks them against
    "*", which no statement naming a topic matches)."""
    try:
        topic = handler._get_param("TopicArn") or handler._get_param("TargetArn")
    except Exception:
        topic = None
    return [(action, topic or "*")]


def _ses_checks(handler, action):
    """SES v2's SendEmail against the ARN of the identity of its From
    address, as AWS checks it (moto checks "*", which no statement naming an
    identity matches). Its conditions (ses:FromAddress, ses:Recipients) are
    not evaluated, as no condition is here."""
    body = handler.body
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            body = {}
    sender = (body or {}).get("FromEmailAddress") if isinstance(body, dict) else None
    if action != "SendEmail" or not sender:
        return [(action, "*")]
    address = email.utils.parseaddr(sender)[1] or sender
    return [(action, f"arn:aws:ses:{handler.region}:{handler.current_account}:identity/{address}")]


def _checks(handler, resource):
    action = handler._get_action()
    if handler.service_name == "dynamodb":
        return _dynamodb_checks(handler, action)
    if handler.service_name == "secretsmanager":
        return _secretsmanager_checks(handler, action)
    if handler.service_name == "sns":
        return _sns_checks(handler, action)
    if handler.service_name == "sesv2":
        return _ses_checks(handler, action)
    if handler.service_name == "sqs":
        return [(_SQS_BATCH_ACTIONS.get(action, action), resource)]
    return [(action, resource)]


_record_lock = threading.Lock()


def _record(principal, action, resource, allowed, enforced):
    path = os.environ.get("IAM_RECORD_FILE")
    if not path:
        return
    line = json.dumps(
        {"principal": principal, "action": action, "resource": resource, "allowed": allowed, "enforced": enforced}
    )
    with _record_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


_original_setup_class = BaseResponse.setup_class


def setup_class(self, request, *args, **kwargs):
    # An SNS request is form-encoded: werkzeug parses the form and keeps no
    # body, and moto then checks the signature over the form as Python's
    # SDK would encode it, which another SDK's signature (Rust's) does not
    # match. The bytes as they were signed are kept for the check.
    if getattr(self, "service_name", None) == "sns":
        try:
            self._signed_body = request.get_data(cache=True, parse_form_data=False)
        except Exception:
            self._signed_body = b""
    return _original_setup_class(self, request, *args, **kwargs)


BaseResponse.setup_class = setup_class


def _iam_request(handler, action):
    return IAMRequest(
        account_id=handler.current_account,
        method=handler.method,
        path=handler.raw_path + ("?" + handler.uri.split("?", 1)[1] if "?" in handler.uri else ""),
        data=handler.data,
        body=handler.raw_body or getattr(handler, "_signed_body", b""),
        headers=handler.headers,
        action=action,
    )


class _JsonRefusal(JsonRESTError):
    code = 403


def _in_protocol(handler, refusal):
    """A refusal in the request's own protocol: JSON for JSON APIs (moto
    answers XML, which the SDKs cannot read), with AWS's error code. SES v2
    is JSON without a target header (REST-JSON)."""
    if not handler.headers.get("X-Amz-Target") and getattr(handler, "service_name", None) != "sesv2":
        return refusal
    error_type = getattr(refusal, "error_type", "AccessDenied")
    if error_type == "AccessDenied":
        error_type = "AccessDeniedException"
    return _JsonRefusal(error_type, getattr(refusal, "message", str(refusal)))


def authenticate_and_authorize_normal_action(self, resource="*"):
    _ensure_local_admin()
    enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
    if not enforced:
        ActionAuthenticatorMixin.request_count += 1
    if not enforced and not os.environ.get("IAM_RECORD_FILE"):
        return
    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    for action, checked in _checks(self, resource):
        try:
            request = _iam_request(self, action)
        except Exception:
            if enforced:
                raise
            continue  # an unknown key before enforcement: nothing to record
        principal = request._access_key.arn
        try:
            if enforced:
                request.check_signature()
            try:
                request.check_action_permitted(checked)
            except HTTPException:
                raise
            except Exception:
                # moto's trust-policy check fails on a Service principal
                # (a Lambda role's); AWS refuses such an AssumeRole.
                request._raise_access_denied()
        except HTTPException as refusal:
            _record(principal, request._action, checked, False, enforced)
            if enforced:
                raise _in_protocol(self, refusal)
            continue
        _record(principal, request._action, checked, True, enforced)


BaseResponse._authenticate_and_authorize_normal_action = authenticate_and_authorize_normal_action

# ------------------------------------------------------------ data.json
import moto.moto_api._internal.urls as moto_api_urls  # noqa: E402


def model_data(request, full_url, headers):
    from moto.core.model_instances import model_data as tracked

    results = {}
    for service in sorted(tracked):
        results[service] = {}
        for name in sorted(tracked[service]):
            instances = []
            for instance in tracked[service][name].instances_tracked:
                fields = {}
                for attr in dir(instance):
                    if attr.startswith("_"):
                        continue
                    try:
                        value = getattr(instance, attr)
                        json.dumps(value)
                    except Exception:
                        continue
                    fields[attr] = value
                instances.append(fields)
            results[service][name] = instances
    return 200, {"Content-Type": "application/javascript"}, json.dumps(results)


moto_api_urls.url_paths["{0}/moto-api/data.json"] = model_data

if __name__ == "__main__":
    sys.exit(main())
