#!/usr/bin/env python3
"""Deploy, describe and destroy the cloud side from infra/template.yaml.

One command for AWS and for a local emulator: the difference is only the
standard AWS configuration (AWS_ENDPOINT_URL or --endpoint-url, region,
profile or credentials). Nothing here knows which emulator it talks to.

    deploy.py deploy  --stack NAME [--artifacts DIR | --placeholder-artifacts]
                      [--local-host] [--describe-to FILE] [--new-agent-key]
    deploy.py describe --stack NAME --describe-to FILE [--local-host]
    deploy.py destroy --stack NAME
    deploy.py agent-key --stack NAME --to FILE
    deploy.py allegro-authorize --stack NAME --shop ID
    deploy.py build   [--architecture arm64|x86_64] [--out DIR] [--only NAME...]
    deploy.py functions

`deploy` without --artifacts builds the functions first (`build`, for the
stack's architecture, arm64 by default). After a deploy to AWS (not
--local-host) it hands over to the office: the queue URLs for the agent's
configuration and, the first time (or with --new-agent-key), a new access
key of the stack's least-privilege AgentUser, printed once to standard
output and stored nowhere else. `destroy` deletes those keys, the stack and
the artefact bucket.

`build` installs cargo-lambda (PyPI; it brings zig) into this venv and the
Rust target when missing, runs `cargo lambda build --release` for each
function in the template, zips each `bootstrap` as DIR/<arch>/<name>.zip,
and checks that no binary needs a glibc newer than Amazon Linux 2023's
(check_glibc.py).

`deploy` creates or updates the stack, then checks each resource type that
some emulators skip while still reporting success (Function URLs,
EventBridge Scheduler schedules, table TTL) and, when one is missing,
creates it through the service API and says so. `--describe-to` writes a
JSON description of what was deployed (outputs, each function's resolved
environment, its queue triggers and schedules, Function URLs) that the
project's local host runs the handlers from: the template stays the only
list of names.

`allegro-authorize` links an Allegro seller's account to a shop of the
stack (OAuth device flow): it shows a code and the page where the seller,
signed in to Allegro, confirms it, waits for the confirmation, and stores
the seller's token pair in the shop's own secret `<stack>-token-<shop>`,
where the functions renew it. Run it once per Allegro shop, and again if
the seller unlinks the application. The tokens are never printed.

With `--local-host` the functions are run by the project's local host, not
by Lambda: the stack is deployed with ManagedEventSources=false so no event
source mapping races the host for messages.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import botocore.exceptions
import yaml

INFRA = Path(__file__).resolve().parent
TEMPLATE = INFRA / "template.yaml"
REPO = INFRA.parent
RUST_TARGETS = {"arm64": "aarch64-unknown-linux-gnu", "x86_64": "x86_64-unknown-linux-gnu"}
CARGO_LAMBDA_ARCH = {"arm64": "--arm64", "x86_64": "--x86-64"}
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
TERMINAL_FAIL = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_FAILED",
}
PLACEHOLDER_BOOTSTRAP = (
    "#!/bin/sh\n"
    "echo 'This stack was deployed for a local host: its functions run in the "
    "project local host (cargo run -p local-host), not here.' >&2\n"
    "exit 1\n"
)


def log(message):
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def fail(message):
    log(f"error: {message}")
    sys.exit(1)


def load_template():
    with open(TEMPLATE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def session(args):
    kwargs = {}
    if args.profile:
        kwargs["profile_name"] = args.profile
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region_name"] = region
    s = boto3.session.Session(**kwargs)
    if not s.region_name:
        fail("no AWS region: pass --region or set AWS_REGION")
    return s


def client(s, args, service):
    # boto3 honours AWS_ENDPOINT_URL by itself; --endpoint-url is a shortcut.
    if args.endpoint_url:
        return s.client(service, endpoint_url=args.endpoint_url)
    return s.client(service)


def functions_in(template):
    """Logical id -> handler name for every Lambda function in the template."""
    return {
        logical: res["Properties"]["Handler"]
        for logical, res in template["Resources"].items()
        if res["Type"] == "AWS::Lambda::Function"
    }


def artifact_bucket(s, args):
    account = client(s, args, "sts").get_caller_identity()["Account"]
    return f"{args.stack}-artifacts-{account}".lower()


def ensure_bucket(s3, bucket, region):
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except botocore.exceptions.ClientError:
        pass
    params = {"Bucket": bucket}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**params)
    log(f"created artifact bucket {bucket}")


def placeholder_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, PLACEHOLDER_BOOTSTRAP)
    return buf.getvalue()


def upload_artifacts(s3, bucket, prefix, handlers, args):
    for handler in sorted(set(handlers.values())):
        key = f"{prefix}/{handler}.zip"
        if args.placeholder_artifacts:
            body = placeholder_zip()
        else:
            path = Path(args.artifacts) / f"{handler}.zip"
            if not path.is_file():
                fail(f"artifact {path} is missing: build the functions first (see docs/OPERATIONS.md)")
            body = path.read_bytes()
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    log(f"uploaded {len(set(handlers.values()))} function artifacts to s3://{bucket}/{prefix}/")


def stack_status(cfn, stack):
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except botocore.exceptions.ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def wait_for(cfn, stack, timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = stack_status(cfn, stack)
        if status is None:
            return "DELETE_COMPLETE"
        if status in TERMINAL_OK or status in TERMINAL_FAIL or status == "DELETE_COMPLETE":
            return status
        time.sleep(1)
    fail(f"stack {stack} did not settle within {timeout} s")


def failure_reasons(cfn, stack):
    try:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    except botocore.exceptions.ClientError:
        return []
    return [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("FAILED")
    ]


def deploy_stack(cfn, args, parameters):
    body = TEMPLATE.read_text(encoding="utf-8")
    params = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()]
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    status = stack_status(cfn, args.stack)
    if status is not None:
        # On update, keep what the user set before unless given again
        # (shop configuration and secrets are not re-typed on every deploy).
        # Only parameters the stack has may be kept; the rest take defaults.
        # A value CloudFormation shows is passed again as it is; a NoEcho
        # value shows as "****" and is kept with UsePreviousValue.
        existing = cfn.describe_stacks(StackName=args.stack)["Stacks"][0].get("Parameters", [])
        previous = {p["ParameterKey"]: p.get("ParameterValue") for p in existing}
        for key in ("ShopsConfig", "AlarmEmail"):
            if key in parameters or key not in previous:
                continue
            if previous[key] is None or set(previous[key]) == {"*"}:
                params.append({"ParameterKey": key, "UsePreviousValue": True})
            else:
                params.append({"ParameterKey": key, "ParameterValue": previous[key]})
    if status == "ROLLBACK_COMPLETE":
        log(f"stack {args.stack} is in ROLLBACK_COMPLETE from a failed first create; deleting it first")
        cfn.delete_stack(StackName=args.stack)
        wait_for(cfn, args.stack)
        status = None
    if status is None:
        cfn.create_stack(StackName=args.stack, TemplateBody=body, Parameters=params, Capabilities=caps)
        log(f"creating stack {args.stack}")
    else:
        try:
            cfn.update_stack(StackName=args.stack, TemplateBody=body, Parameters=params, Capabilities=caps)
            log(f"updating stack {args.stack}")
        except botocore.exceptions.ClientError as e:
            if "No updates are to be performed" not in str(e):
                raise
            log(f"stack {args.stack} is up to date")
    status = wait_for(cfn, args.stack)
    if status not in TERMINAL_OK or status == "UPDATE_ROLLBACK_COMPLETE":
        reasons = "; ".join(failure_reasons(cfn, args.stack)) or "no reason given"
        fail(f"stack {args.stack} ended in {status}: {reasons}")
    log(f"stack {args.stack}: {status}")


def physical_ids(cfn, stack):
    ids = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r.get("LogicalResourceId") and r.get("PhysicalResourceId"):
                ids[r["LogicalResourceId"]] = r["PhysicalResourceId"]
    return ids


def resolve(value, ids, parameters, stack):
    """Resolves the few intrinsics the template uses for names."""
    if isinstance(value, dict):
        if "Ref" in value:
            ref = value["Ref"]
            if ref in parameters:
                return str(parameters[ref])
            if ref == "AWS::StackName":
                return stack
            return ids.get(ref)
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"].replace("${AWS::StackName}", stack)
            for name, v in parameters.items():
                text = text.replace("${" + name + "}", str(v))
            return text
    return value


def ensure_skippable_resources(s, args, template, ids, parameters):
    """Creates through the API what an emulator may have skipped, and says so."""
    lam = client(s, args, "lambda")
    notes = []
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Url":
            target = props["TargetFunctionArn"]["Fn::GetAtt"][0]
            fn = ids.get(target)
            try:
                lam.get_function_url_config(FunctionName=fn)
            except lam.exceptions.ResourceNotFoundException:
                lam.create_function_url_config(FunctionName=fn, AuthType=props["AuthType"])
                notes.append(f"{logical} (AWS::Lambda::Url) was skipped by this endpoint; created it through the Lambda API")
        elif res["Type"] == "AWS::Scheduler::Schedule":
            sched = client(s, args, "scheduler")
            name = resolve(props["Name"], ids, parameters, args.stack)
            try:
                sched.get_schedule(Name=name)
            except sched.exceptions.ResourceNotFoundException:
                target_logical = props["Target"]["Arn"]["Fn::GetAtt"][0]
                fn_arn = lam.get_function(FunctionName=ids[target_logical])["Configuration"]["FunctionArn"]
                role_logical = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
                role_arn = client(s, args, "iam").get_role(RoleName=ids[role_logical])["Role"]["Arn"]
                sched.create_schedule(
                    Name=name,
                    ScheduleExpression=props["ScheduleExpression"],
                    FlexibleTimeWindow=props["FlexibleTimeWindow"],
                    Target={"Arn": fn_arn, "RoleArn": role_arn, "Input": props["Target"].get("Input", "{}")},
                )
                notes.append(f"{logical} (AWS::Scheduler::Schedule) was skipped by this endpoint; created it through the Scheduler API")
        elif res["Type"] == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
            ddb = client(s, args, "dynamodb")
            table = ids[logical]
            ttl = props["TimeToLiveSpecification"]
            current = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                ddb.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
                notes.append(f"{logical} TTL on `{ttl['AttributeName']}` was not enabled by this endpoint; enabled it through the DynamoDB API")
    for note in notes:
        log(note)
    return notes


def describe(s, args, template, parameters):
    cfn = client(s, args, "cloudformation")
    lam = client(s, args, "lambda")
    sqs = client(s, args, "sqs")
    iam = client(s, args, "iam")
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    ids = physical_ids(cfn, args.stack)
    handlers = functions_in(template)
    functions = {}
    for logical, handler in handlers.items():
        conf = lam.get_function_configuration(FunctionName=ids[logical])
        role_name = conf["Role"].rsplit("/", 1)[-1]
        functions[handler] = {
            "name": conf["FunctionName"],
            "timeout_seconds": conf.get("Timeout", 3),
            "environment": conf.get("Environment", {}).get("Variables", {}),
            # The local host runs the function under this role, as Lambda does.
            "role_arn": conf["Role"],
            "grants": role_grants(iam, role_name),
        }
    event_sources, schedules, urls = [], [], []
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::EventSourceMapping":
            fn_logical = props["FunctionName"]["Ref"]
            queue_logical = props["EventSourceArn"]["Fn::GetAtt"][0]
            queue_url = ids[queue_logical]
            attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
            # Lambda's own refusals (CreateEventSourceMapping), so a template the
            # local host would run is one AWS accepts.
            batch_size = int(props.get("BatchSize", 10))
            window = int(props.get("MaximumBatchingWindowInSeconds", 0))
            if queue_url.endswith(".fifo") and batch_size > 10:
                sys.exit(f"{logical}: InvalidParameterValueException: BatchSize {batch_size} is above 10, the most a FIFO queue allows")
            if batch_size > 10 and window < 1:
                sys.exit(f"{logical}: InvalidParameterValueException: Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
            event_sources.append(
                {
                    "name": logical,
                    "function": handlers[fn_logical],
                    "queue_url": queue_url,
                    "queue_arn": attrs.get("QueueArn"),
                    "fifo": queue_url.endswith(".fifo"),
                    "visibility_timeout_seconds": int(attrs.get("VisibilityTimeout", "30")),
                    "batch_size": batch_size,
                    "batching_window_seconds": window,
                    "report_batch_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    "managed_by_lambda": parameters.get("ManagedEventSources") == "true",
                }
            )
        elif res["Type"] == "AWS::Scheduler::Schedule":
            target_logical = props["Target"]["Arn"]["Fn::GetAtt"][0]
            schedules.append(
                {
                    "name": resolve(props["Name"], ids, parameters, args.stack),
                    "function": handlers[target_logical],
                    "expression": props["ScheduleExpression"],
                    "input": props["Target"].get("Input", "{}"),
                }
            )
        elif res["Type"] == "AWS::Lambda::Url":
            target_logical = props["TargetFunctionArn"]["Fn::GetAtt"][0]
            try:
                url = lam.get_function_url_config(FunctionName=ids[target_logical])["FunctionUrl"]
            except lam.exceptions.ResourceNotFoundException:
                url = None
            urls.append(
                {
                    "name": logical,
                    "function": handlers[target_logical],
                    "auth": props["AuthType"],
                    "url": url,
                    "refused_because": public_url_refusal(lam, ids[target_logical]) if props["AuthType"] == "NONE" else None,
                }
            )
    user = agent_user(s, args, ids)
    return {
        "stack": args.stack,
        "agent_user": {"name": user, "grants": user_grants(iam, user)} if user else None,
        "webhook_urls": webhook_urls(stack, urls),
        "region": s.region_name,
        "endpoint_url": args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
        "outputs": outputs,
        "functions": functions,
        "event_sources": event_sources,
        "schedules": schedules,
        "function_urls": urls,
    }


def statements(document):
    """A policy document's Allow statements as {"actions": [...], "resources": [...]}."""
    if isinstance(document, str):
        document = json.loads(document)
    listed = document.get("Statement", [])
    out = []
    for st in listed if isinstance(listed, list) else [listed]:
        if st.get("Effect") != "Allow":
            continue
        actions, resources = st.get("Action", []), st.get("Resource", [])
        out.append(
            {
                "actions": sorted(actions if isinstance(actions, list) else [actions]),
                "resources": sorted(resources if isinstance(resources, list) else [resources]),
            }
        )
    return out


def role_grants(iam, role):
    """What a role's inline policies allow (managed policies are the platform's, e.g. logs)."""
    grants = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        grants += statements(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    return grants


def user_grants(iam, user):
    grants = []
    for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
        grants += statements(iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"])
    return grants


def public_url_refusal(lam, function):
    """Why AWS would answer 403 to everyone at a public (AuthType NONE)
    Function URL, or None: since October 2025 a new URL needs the function's
    resource policy to let everyone both `lambda:InvokeFunctionUrl` (with
    `lambda:FunctionUrlAuthType` NONE) and `lambda:InvokeFunction` (AWS
    Lambda developer guide, "Control access to Lambda function URLs"). Read
    from the deployed policy, so a template that forgets one is refused
    locally as it would be in AWS."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return "the function has no resource policy: nobody may call its URL"
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]

    def everyone(statement):
        principal = statement.get("Principal")
        return principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")

    def url_auth_none(statement):
        # AWS puts it in the condition; an emulator may keep the property.
        condition = statement.get("Condition", {}).get("StringEquals", {})
        return "NONE" in (condition.get("lambda:FunctionUrlAuthType"), statement.get("FunctionUrlAuthType"))

    allowed = [s for s in statements if s.get("Effect", "Allow") == "Allow" and everyone(s)]
    missing = []
    if not any(s.get("Action") == "lambda:InvokeFunctionUrl" and url_auth_none(s) for s in allowed):
        missing.append("lambda:InvokeFunctionUrl (FunctionUrlAuthType NONE)")
    if not any(s.get("Action") == "lambda:InvokeFunction" for s in allowed):
        missing.append("lambda:InvokeFunction")
    if missing:
        return "the function's resource policy does not let everyone " + " and ".join(missing) + "; a public Function URL needs both since October 2025"
    return None


def webhook_urls(stack, urls):
    """Each shop's order webhook address: the webhook Function URL + /<shop id>."""
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    try:
        shops = json.loads(params.get("ShopsConfig") or "[]")
    except ValueError:
        shops = []
    base = next((u["url"] for u in urls if u["function"] == "webhook" and u["url"]), None)
    if not base:
        return {}
    return {shop["id"]: base.rstrip("/") + "/" + shop["id"] for shop in shops if isinstance(shop, dict) and "id" in shop}


def parameters_for(args, bucket):
    params = {
        "ArtifactBucket": bucket,
        "ArtifactPrefix": "functions",
        "ManagedEventSources": "false" if args.local_host else "true",
    }
    if args.architecture:
        params["FunctionArchitecture"] = args.architecture
    for item in getattr(args, "parameter", None) or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--parameter {key}: expected KEY=VALUE or KEY=@FILE")
        if value.startswith("@"):
            # Values from files keep secrets off the command line.
            value = Path(value[1:]).read_text(encoding="utf-8").strip()
        params[key] = value
    return params


def shop_secrets_name(stack):
    return f"{stack}-shop-secrets"


def store_shop_secrets(s, args, parameters):
    """The shop credentials (--parameter ShopSecrets=@file, JSON) go into a
    Secrets Manager secret, never into the stack: the stack gets the
    secret's ARN (ShopSecretsArn), the functions read the value at cold
    start. Without ShopSecrets an existing secret keeps its value; the first
    deploy creates it empty ("{}")."""
    value = parameters.pop("ShopSecrets", None)
    sm = client(s, args, "secretsmanager")
    name = shop_secrets_name(args.stack)
    try:
        arn = sm.describe_secret(SecretId=name)["ARN"]
        if value is not None:
            sm.put_secret_value(SecretId=arn, SecretString=value)
            log(f"shop credentials stored in secret {name}")
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        arn = sm.create_secret(
            Name=name,
            Description=f"Shop credentials of stack {args.stack} (infra/deploy.py)",
            SecretString=value if value is not None else "{}",
        )["ARN"]
        log(f"shop credentials stored in new secret {name}")
        if value is None and stack_status(client(s, args, "cloudformation"), args.stack) is not None:
            # A stack from before the secret kept them in a NoEcho parameter,
            # which cannot be read back: they must be given once more.
            log(f"WARNING: secret {name} is new and empty: pass --parameter ShopSecrets=@FILE once")
    parameters["ShopSecretsArn"] = arn


def delete_shop_secrets(s, args):
    sm = client(s, args, "secretsmanager")
    try:
        sm.delete_secret(SecretId=shop_secrets_name(args.stack), ForceDeleteWithoutRecovery=True)
        log(f"secret {shop_secrets_name(args.stack)} deleted")
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def write_description(desc, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Readable by its owner only: it names roles, queues and URLs.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(desc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    log(f"wrote {path}")


def cmd_deploy(args):
    if not args.placeholder_artifacts and not args.artifacts:
        fail("pass --artifacts DIR with the built function zips (or --placeholder-artifacts with --local-host)")
    if args.placeholder_artifacts and not args.local_host:
        fail("--placeholder-artifacts only makes sense with --local-host: Lambda would run the placeholders")
    s = session(args)
    template = load_template()
    bucket = artifact_bucket(s, args)
    s3 = client(s, args, "s3")
    ensure_bucket(s3, bucket, s.region_name)
    parameters = parameters_for(args, bucket)
    store_shop_secrets(s, args, parameters)
    upload_artifacts(s3, bucket, parameters["ArtifactPrefix"], functions_in(template), args)
    cfn = client(s, args, "cloudformation")
    # Buyers open their invoices at the webhook's Function URL, which exists
    # only once the stack does: passed again on every update, and set by a
    # second update after the first deploy. The local host serves its own.
    # The watchdog's e-mail alerts link the console (the admin Function
    # URL's /console/) in the same way.
    link_base = None if args.local_host else webhook_function_url(s, args, cfn)
    if link_base and "DocumentLinkBase" not in parameters:
        parameters["DocumentLinkBase"] = link_base
    console = None if args.local_host else console_url(s, args, cfn)
    if console and "ConsoleUrl" not in parameters:
        parameters["ConsoleUrl"] = console
    deploy_stack(cfn, args, parameters)
    ids = physical_ids(cfn, args.stack)
    ensure_skippable_resources(s, args, template, ids, parameters)
    if not args.local_host and (link_base is None or console is None):
        again = False
        link_base = webhook_function_url(s, args, cfn)
        if link_base and parameters.get("DocumentLinkBase") != link_base:
            log("updating once more: the buyers' invoice links need the webhook's Function URL, known only now")
            parameters["DocumentLinkBase"] = link_base
            again = True
        console = console_url(s, args, cfn)
        if console and "ConsoleUrl" not in parameters:
            log("updating once more: the alerts' links need the admin Function URL, known only now")
            parameters["ConsoleUrl"] = console
            again = True
        if again:
            deploy_stack(cfn, args, parameters)
    desc = describe(s, args, template, parameters)
    if args.describe_to:
        write_description(desc, args.describe_to)
    print(
        json.dumps(
            {"outputs": desc["outputs"], "function_urls": desc["function_urls"], "webhook_urls": desc["webhook_urls"]},
            indent=2,
            sort_keys=True,
        )
    )
    if desc["webhook_urls"]:
        log("register each shop's order webhook (topics order.created and order.updated, the shop's webhook_secret):")
        for shop, url in sorted(desc["webhook_urls"].items()):
            log(f"  {shop}: {url}")


def webhook_function_url(s, args, cfn):
    """The webhook function's URL, or None before the stack has it."""
    if stack_status(cfn, args.stack) is None:
        return None
    name = physical_ids(cfn, args.stack).get("WebhookFunction")
    if not name:
        return None
    try:
        return client(s, args, "lambda").get_function_url_config(FunctionName=name)["FunctionUrl"].rstrip("/")
    except botocore.exceptions.ClientError:
        return None


def console_url(s, args, cfn):
    """The console's root (the admin function's URL + console/), or None
    before the stack has it."""
    if stack_status(cfn, args.stack) is None:
        return None
    name = physical_ids(cfn, args.stack).get("AdminFunction")
    if not name:
        return None
    try:
        url = client(s, args, "lambda").get_function_url_config(FunctionName=name)["FunctionUrl"]
    except botocore.exceptions.ClientError:
        return None
    return url.rstrip("/") + "/console/"


def delete_documents_bucket(s, args, bucket):
    """The stack keeps the buyers' invoices (DeletionPolicy Retain): the
    bucket goes when empty, or with --delete-invoices; otherwise it stays
    and is named."""
    s3 = client(s, args, "s3")
    try:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    except botocore.exceptions.ClientError:
        return
    if keys and not args.delete_invoices:
        log(f"kept bucket {bucket}: it holds {len(keys)} buyers' invoice(s) whose links still work; run destroy with --delete-invoices to delete them")
        return
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    log(f"documents bucket {bucket} deleted ({len(keys)} invoice(s))")


def cmd_describe(args):
    s = session(args)
    template = load_template()
    parameters = parameters_for(args, artifact_bucket(s, args))
    parameters.pop("ShopSecrets", None)
    desc = describe(s, args, template, parameters)
    write_description(desc, args.describe_to)
    for shop, url in sorted(desc["webhook_urls"].items()):
        log(f"webhook for shop {shop}: {url}")


def cmd_destroy(args):
    s = session(args)
    cfn = client(s, args, "cloudformation")
    if stack_status(cfn, args.stack) is None:
        log(f"stack {args.stack} does not exist")
    else:
        template = load_template()
        ids = physical_ids(cfn, args.stack)
        # Schedules created through the API are not the stack's to delete.
        for logical, res in template["Resources"].items():
            if res["Type"] == "AWS::Scheduler::Schedule":
                sched = client(s, args, "scheduler")
                name = resolve(res["Properties"]["Name"], ids, {}, args.stack)
                try:
                    sched.delete_schedule(Name=name)
                except botocore.exceptions.ClientError:
                    pass
        delete_agent_keys(s, args, ids)
        cfn.delete_stack(StackName=args.stack)
        status = wait_for(cfn, args.stack)
        if status != "DELETE_COMPLETE":
            fail(f"stack {args.stack} ended in {status}: {'; '.join(failure_reasons(cfn, args.stack))}")
        log(f"stack {args.stack} deleted")
        if ids.get("DocumentsBucket"):
            delete_documents_bucket(s, args, ids["DocumentsBucket"])
    delete_shop_secrets(s, args)
    delete_token_secrets(s, args)
    s3 = client(s, args, "s3")
    bucket = artifact_bucket(s, args)
    try:
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        for obj in objects:
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        log(f"artifact bucket {bucket} deleted")
    except botocore.exceptions.ClientError:
        log(f"artifact bucket {bucket} did not exist")


# ------------------------------------------------------------ Allegro


def token_secret_name(stack, shop):
    return f"{stack}-token-{shop}"


def shop_settings(s, args):
    """The shop's entry of the deployed ShopsConfig parameter."""
    cfn = client(s, args, "cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    except botocore.exceptions.ClientError:
        fail(f"stack {args.stack} does not exist: deploy it first")
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    try:
        shops = json.loads(params.get("ShopsConfig") or "[]")
    except json.JSONDecodeError:
        fail("the stack's ShopsConfig is not JSON")
    for shop in shops:
        if shop.get("id") == args.shop:
            if shop.get("platform") != "allegro":
                fail(f"shop {args.shop} is a {shop.get('platform')} shop, not allegro")
            return shop
    fail(f"shop {args.shop} is not in the stack's ShopsConfig")


def oauth_post(url, client_id, client_secret, form):
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"{}")
        except json.JSONDecodeError:
            return e.code, {"error": body[:200].decode("utf-8", "replace")}
    except urllib.error.URLError as e:
        fail(f"cannot reach {url}: {e.reason}")


def cmd_allegro_authorize(args):
    s = session(args)
    shop = shop_settings(s, args)
    auth_url = ((shop.get("settings") or {}).get("auth_url") or "https://allegro.pl").rstrip("/")
    sm = client(s, args, "secretsmanager")
    try:
        credentials = json.loads(sm.get_secret_value(SecretId=shop_secrets_name(args.stack))["SecretString"])
    except (botocore.exceptions.ClientError, json.JSONDecodeError, KeyError):
        fail(f"cannot read the shop credentials from secret {shop_secrets_name(args.stack)}")
    own = credentials.get(args.shop) or {}
    client_id, client_secret = own.get("client_id"), own.get("client_secret")
    if not client_id or not client_secret:
        fail(f"the shop credentials of {args.shop} have no client_id and client_secret")
    status, device = oauth_post(
        f"{auth_url}/auth/oauth/device", client_id, client_secret, {"client_id": client_id}
    )
    if status != 200 or "device_code" not in device:
        fail(f"Allegro refused the device authorisation ({status} {device.get('error', '')})")
    code = str(device.get("user_code", ""))
    shown = " ".join(code[i : i + 3] for i in range(0, len(code), 3))
    page = device.get("verification_uri_complete") or device.get("verification_uri", "")
    print(f"Open {page}", flush=True)
    print(f"signed in as the seller of shop {args.shop}, and confirm the code: {shown}", flush=True)
    interval = max(int(str(device.get("interval", 5)) or 5), 1)
    deadline = time.monotonic() + min(int(str(device.get("expires_in", 3600)) or 3600), args.timeout)
    while True:
        if time.monotonic() > deadline:
            fail("the code was not confirmed in time: run the command again")
        time.sleep(interval)
        status, token = oauth_post(
            f"{auth_url}/auth/oauth/token",
            client_id,
            client_secret,
            {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device["device_code"]},
        )
        if status == 200 and token.get("access_token") and token.get("refresh_token"):
            break
        error = token.get("error", "")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error == "access_denied":
            fail("the seller refused the application")
        fail(f"Allegro refused the device code ({status} {error}): run the command again")
    pair = json.dumps({"access_token": token["access_token"], "refresh_token": token["refresh_token"]})
    name = token_secret_name(args.stack, args.shop)
    try:
        sm.put_secret_value(SecretId=name, SecretString=pair)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        sm.create_secret(
            Name=name,
            Description=f"Allegro tokens of shop {args.shop} of stack {args.stack} (rotated by the functions)",
            SecretString=pair,
        )
    log(f"shop {args.shop} authorised: its tokens are in secret {name}")


def delete_token_secrets(s, args):
    sm = client(s, args, "secretsmanager")
    prefix = token_secret_name(args.stack, "")
    pages = sm.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
    for page in pages:
        for secret in page.get("SecretList", []):
            if secret["Name"].startswith(prefix):
                sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
                log(f"secret {secret['Name']} deleted")


# ------------------------------------------------------------ building

def venv_bin():
    """The bin/ folder of the Python running this script (the project venv)."""
    return Path(sys.executable).parent


def run_tool(cmd, **kwargs):
    log("$ " + " ".join(str(c) for c in cmd))
    result = subprocess.run(cmd, **kwargs)
    if result.returncode != 0:
        fail(f"{cmd[0]} exited with {result.returncode}")
    return result


def ensure_build_tools(arch):
    """cargo-lambda (with zig) in this venv and the Rust target, installed when missing."""
    if not (venv_bin() / "cargo-lambda").exists():
        log("installing cargo-lambda (and zig) into the venv from infra/requirements-build.txt")
        run_tool([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "-r", str(INFRA / "requirements-build.txt")])
    triple = RUST_TARGETS[arch]
    installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True)
    if installed.returncode != 0:
        fail("rustup is needed to add the Rust target " + triple)
    if triple not in installed.stdout.split():
        run_tool(["rustup", "target", "add", triple])


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def build_functions(arch, out, only=None):
    """Builds, zips and checks each function; returns {name: zip path}."""
    sys.path.insert(0, str(INFRA))
    import check_glibc

    names = sorted(set(functions_in(load_template()).values()))
    if only:
        unknown = set(only) - set(names)
        if unknown:
            fail(f"no such function in the template: {', '.join(sorted(unknown))}")
        names = sorted(only)
    ensure_build_tools(arch)
    env = dict(os.environ, PATH=f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = ["cargo", "lambda", "build", "--release", CARGO_LAMBDA_ARCH[arch], "-p", "functions"]
    for name in names:
        cmd += ["--bin", name]
    started = time.time()
    run_tool(cmd, cwd=REPO, env=env)
    log(f"built {len(names)} function(s) for {arch} in {time.time() - started:.0f} s")
    dest = Path(out) / arch
    dest.mkdir(parents=True, exist_ok=True)
    zips, failed = {}, []
    for name in names:
        bootstrap = target_dir() / "lambda" / name / "bootstrap"
        if not bootstrap.is_file():
            fail(f"cargo lambda did not produce {bootstrap}")
        path = dest / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, bootstrap.read_bytes())
        ok, newest = check_glibc.check(path)
        log(f"{path}: {path.stat().st_size:,} bytes zipped ({bootstrap.stat().st_size:,} unzipped), needs GLIBC {newest}")
        if not ok:
            failed.append(f"{name} needs GLIBC_{newest}")
        zips[name] = path
    if failed:
        fail(f"newer than Amazon Linux 2023's glibc {check_glibc.AMAZON_LINUX_2023_GLIBC}: {'; '.join(failed)}")
    return zips


def cmd_console_invite(args):
    """A one-time sign-in link to the console for an operator (made when
    missing), valid 30 minutes: the same items as the admin function's
    `console::auth::Auth::invite`. The token goes after `#` in the link, so
    no server ever receives it; only its SHA-256 is stored."""
    import hashlib
    import secrets
    import time

    email = args.email.strip().lower()
    if "@" not in email or len(email) > 254:
        fail("an operator is named by an e-mail address (name@domain)")
    s = session(args)
    cfn = client(s, args, "cloudformation")
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    table = outputs.get("StateTableName")
    admin = physical_ids(cfn, args.stack).get("AdminFunction")
    if not table or not admin:
        fail(f"stack {args.stack} has no state table or admin function: deploy it first")
    admin_url = args.console_url
    if not admin_url:
        try:
            admin_url = client(s, args, "lambda").get_function_url_config(FunctionName=admin)["FunctionUrl"]
        except botocore.exceptions.ClientError:
            fail(f"the admin function of {args.stack} has no Function URL: give the console's address with --console-url")
    ddb = client(s, args, "dynamodb")
    now_ms = int(time.time() * 1000)
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": f"operator#{email}"}, "sk": {"S": "operator"}},
        UpdateExpression="SET email = if_not_exists(email, :email), created_at = if_not_exists(created_at, :now)",
        ExpressionAttributeValues={":email": {"S": email}, ":now": {"N": str(now_ms)}},
    )
    token = secrets.token_urlsafe(32)
    expires_ms = now_ms + 30 * 60 * 1000
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "signin-link#" + hashlib.sha256(token.encode()).hexdigest()}, "sk": {"S": "link"}},
        UpdateExpression="SET email = :email, created_at = :now, expires = :expires, #ttl = :ttl",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={
            ":email": {"S": email},
            ":now": {"N": str(now_ms)},
            ":expires": {"N": str(expires_ms)},
            ":ttl": {"N": str(expires_ms // 1000)},
        },
    )
    print(f"{admin_url.rstrip('/')}/console/link#{token}")
    print(f"(once, within 30 minutes, for {email}; it asks for a password first)", file=sys.stderr)


def stack_table(s, args):
    """The stack's state table (deploy it first)."""
    cfn = client(s, args, "cloudformation")
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    table = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}.get("StateTableName")
    if not table:
        fail(f"stack {args.stack} has no state table: deploy it first")
    return table


def cmd_api_token(args):
    """An API token for the admin URL's JSON routes (`/status`, the retry
    API), printed once; the table keeps only its SHA-256, under the token's
    name too so that `--revoke NAME` finds it without a scan."""
    import hashlib
    import secrets
    import time

    name = args.name.strip()
    if not name or len(name) > 64:
        fail("name the token (1 to 64 characters), e.g. --name monitoring")
    s = session(args)
    ddb = client(s, args, "dynamodb")
    table = stack_table(s, args)
    listing = {"pk": {"S": "api-tokens"}, "sk": {"S": name}}
    if args.revoke:
        held = ddb.get_item(TableName=table, Key=listing, ConsistentRead=True).get("Item")
        if not held:
            fail(f"no API token is named {name}")
        ddb.delete_item(TableName=table, Key={"pk": held["token_key"], "sk": {"S": "token"}})
        ddb.delete_item(TableName=table, Key=listing)
        log(f"API token {name} revoked")
        return
    token = secrets.token_urlsafe(32)
    key = "api-token#" + hashlib.sha256(token.encode()).hexdigest()
    now_ms = str(int(time.time() * 1000))
    try:
        ddb.put_item(
            TableName=table,
            Item={**listing, "token_key": {"S": key}, "created_at": {"N": now_ms}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        fail(f"an API token named {name} exists; revoke it first (--revoke) or choose another name")
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": key}, "sk": {"S": "token"}, "name": {"S": name}, "created_at": {"N": now_ms}},
    )
    print(token)
    log(f"API token {name}: shown once, send it as `Authorization: Bearer <token>`")


def cmd_console_reset_totp(args):
    """Turns an operator's TOTP off (a lost phone) and ends their sessions;
    the console's log says who did it. The operator signs in with the
    password, or a new `console-invite` link, and may turn TOTP on again."""
    import time
    import uuid
    from datetime import datetime, timezone

    email = args.email.strip().lower()
    s = session(args)
    ddb = client(s, args, "dynamodb")
    table = stack_table(s, args)
    try:
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": f"operator#{email}"}, "sk": {"S": "operator"}},
            UpdateExpression="REMOVE totp_secret, totp_enabled_at, totp_last_step, totp_enrolment, totp_enrolment_expires "
            "ADD session_epoch :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        fail(f"no operator {email}")
    now = datetime.now(timezone.utc)
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "log#" + now.strftime("%Y-%m-%d")},
            "sk": {"S": now.isoformat() + "#" + uuid.uuid4().hex},
            "ttl": {"N": str(int(time.time()) + 90 * 86400)},
            "at": {"S": now.isoformat()},
            "actor": {"S": "deploy.py"},
            "action": {"S": "totp reset"},
            "subject": {"S": email},
            "detail": {"S": "TOTP turned off and sessions ended from the deploy command (a lost authenticator)"},
        },
    )
    log(f"TOTP of {email} is off and their sessions ended")


def cmd_build(args):
    zips = build_functions(args.architecture or "arm64", args.out, args.only)
    print(json.dumps({name: str(path) for name, path in zips.items()}, indent=2, sort_keys=True))


def cmd_functions(_args):
    for name in sorted(set(functions_in(load_template()).values())):
        print(name)


# ------------------------------------------------------------ the office agent's identity

def agent_user(s, args, ids=None):
    cfn = client(s, args, "cloudformation")
    ids = ids if ids is not None else physical_ids(cfn, args.stack)
    template = load_template()
    logical = next((k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::User"), None)
    return ids.get(logical) if logical else None


def delete_agent_keys(s, args, ids):
    """IAM refuses to delete a user that still has access keys."""
    user = agent_user(s, args, ids)
    if not user:
        return
    iam = client(s, args, "iam")
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except botocore.exceptions.ClientError:
        return
    for key in keys:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        log(f"deleted the agent's access key {key['AccessKeyId']}")


def hand_over_to_agent(s, args):
    """Prints what the office agent is configured with; issues its key once."""
    cfn = client(s, args, "cloudformation")
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    user = agent_user(s, args)
    iam = client(s, args, "iam")
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"] if user else []
    secret = None
    if user and (not keys or args.new_agent_key):
        if len(keys) >= 2:
            fail(f"{user} already has two access keys (IAM's limit): delete the old one first "
                 f"(aws iam delete-access-key --user-name {user} --access-key-id {keys[0]['AccessKeyId']})")
        secret = iam.create_access_key(UserName=user)["AccessKey"]
    print()
    print(f"== The office agent (docs/INSTALL.md) — stack {args.stack}, region {s.region_name}")
    print("agent.toml:")
    print("  [aws]")
    print(f'  region = "{s.region_name}"')
    print(f'  events_queue_url = "{outputs.get("EventsQueueUrl", "")}"')
    print(f'  commands_queue_url = "{outputs.get("CommandsQueueUrl", "")}"')
    if secret:
        print("secrets (Linux: /etc/optima-sync/agent.env, chmod 600; Windows: see docs/INSTALL.md).")
        print("The secret access key is shown now only: it is stored nowhere, copy it now.")
        print(f"  AWS_ACCESS_KEY_ID={secret['AccessKeyId']}")
        print(f"  AWS_SECRET_ACCESS_KEY={secret['SecretAccessKey']}")
    elif user:
        ids = ", ".join(k["AccessKeyId"] for k in keys)
        print(f"the agent's access key was issued before ({ids}); deploy with --new-agent-key to issue another")
    sys.stdout.flush()


def cmd_agent_key(args):
    """A new access key for the stack's AgentUser, written as an AWS credentials
    file (the agent's `aws.credentials_file`) readable only by its owner."""
    s = session(args)
    user = agent_user(s, args)
    if not user:
        fail(f"stack {args.stack} has no agent user")
    key = client(s, args, "iam").create_access_key(UserName=user)["AccessKey"]
    path = Path(args.to)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"[default]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n")
    log(f"wrote a new access key {key['AccessKeyId']} of {user} to {path}")


def cmd_deploy_and_hand_over(args):
    if not args.artifacts and not args.placeholder_artifacts:
        arch = args.architecture or "arm64"
        build_functions(arch, REPO / "build" / "functions")
        args.artifacts = str(REPO / "build" / "functions" / arch)
    cmd_deploy(args)
    if not args.local_host:
        hand_over_to_agent(session(args), args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", help="AWS endpoint (an emulator); default: AWS_ENDPOINT_URL or AWS itself")
    parser.add_argument("--region", help="AWS region; default: AWS_REGION or the profile's")
    parser.add_argument("--profile", help="AWS profile; default: AWS_PROFILE")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build, zip and check the functions for AWS")
    build.add_argument("--architecture", choices=["arm64", "x86_64"], help="default arm64 (Graviton)")
    build.add_argument("--out", default=str(REPO / "build" / "functions"), help="zips go to OUT/<arch>/<name>.zip")
    build.add_argument("--only", nargs="+", help="only these functions")
    sub.add_parser("functions", help="list the functions the template declares")
    agent_key = sub.add_parser("agent-key", help="issue an access key for the office agent into a credentials file")
    agent_key.add_argument("--stack", required=True)
    agent_key.add_argument("--to", required=True, help="AWS credentials file to write (mode 600)")
    invite = sub.add_parser(
        "console-invite", help="a one-time sign-in link to the console for an operator (made when missing)"
    )
    invite.add_argument("--stack", required=True)
    invite.add_argument("--email", required=True, help="the operator's e-mail address")
    invite.add_argument("--console-url", help="the console's address (default: the admin function's URL)")
    reset_totp = sub.add_parser("console-reset-totp", help="turn an operator's TOTP off (a lost phone) and end their sessions")
    reset_totp.add_argument("--stack", required=True)
    reset_totp.add_argument("--email", required=True)
    api_token = sub.add_parser("api-token", help="an API token for /status and the retry API (printed once), or --revoke one")
    api_token.add_argument("--stack", required=True)
    api_token.add_argument("--name", required=True, help="what the token is for, e.g. monitoring")
    api_token.add_argument("--revoke", action="store_true", help="revoke the token of this name")
    authorize = sub.add_parser(
        "allegro-authorize", help="link an Allegro seller to a shop of the stack (device flow)"
    )
    authorize.add_argument("--stack", required=True)
    authorize.add_argument("--shop", required=True, help="the shop's id in ShopsConfig")
    authorize.add_argument("--timeout", type=int, default=900, help="seconds to wait for the seller (default 900)")
    for name in ("deploy", "describe", "destroy"):
        p = sub.add_parser(name)
        p.add_argument("--stack", required=True, help="stack name, e.g. optima-sync")
        if name in ("deploy", "describe"):
            p.add_argument("--local-host", action="store_true", help="functions run in the project's local host")
            p.add_argument("--describe-to", help="write the deployed description (JSON) here")
            p.add_argument("--architecture", choices=["arm64", "x86_64"])
            p.add_argument(
                "--parameter",
                action="append",
                help="template parameter KEY=VALUE, or KEY=@FILE to read it from a file (repeatable), e.g. ShopsConfig=@shops.json",
            )
        if name == "deploy":
            p.add_argument("--artifacts", help="directory with <handler>.zip for each function (default: build them)")
            p.add_argument("--new-agent-key", action="store_true", help="issue another access key for the office agent")
            p.add_argument("--placeholder-artifacts", action="store_true", help="upload placeholder zips (local host only)")
        if name == "destroy":
            p.add_argument(
                "--delete-invoices",
                action="store_true",
                help="also delete the buyers' invoices (otherwise their bucket is kept while it holds any)",
            )
    parser.add_argument(
        "--template",
        help="another template file (tests deploy a copy with one grant removed); default infra/template.yaml",
    )
    args = parser.parse_args()
    if args.template:
        global TEMPLATE
        TEMPLATE = Path(args.template)
    try:
        {
            "deploy": cmd_deploy_and_hand_over,
            "describe": cmd_describe,
            "destroy": cmd_destroy,
            "build": cmd_build,
            "functions": cmd_functions,
            "agent-key": cmd_agent_key,
            "allegro-authorize": cmd_allegro_authorize,
            "console-invite": cmd_console_invite,
            "api-token": cmd_api_token,
            "console-reset-totp": cmd_console_reset_totp,
        }[args.command](args)
    except botocore.exceptions.EndpointConnectionError as e:
        fail(f"cannot reach AWS: {e}")
    except botocore.exceptions.NoCredentialsError:
        fail("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    except botocore.exceptions.ClientError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
