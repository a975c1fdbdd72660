"""Strict validation of raw ECS API responses against botocore's own model.

botocore's parser is lenient (it skips unknown members and accepts a
timestamp as a number, a numeric string or ISO 8601), so a boto3 test that
passes proves little about the Go SDK under Terraform, whose generated
decoders refuse any member of the wrong JSON type. This module checks the
RAW body (the bytes the server sent, before botocore parses them) the way
those decoders would, and stricter:

- the body is one JSON object (no NaN/Infinity, no duplicate keys);
- every member is one the output shape defines (unknown members refused:
  berth's internal fields must not leak);
- strings are JSON strings, and enum strings one of the model's values;
- integer/long members are JSON integers in range (``1.0`` is refused,
  as Go's ``strconv.ParseInt`` refuses it); double/float are JSON numbers;
  booleans are JSON booleans (never 0/1 or "true");
- timestamps are epoch seconds as JSON numbers (never strings);
- lists, maps and structures recursively; required members present;
- errors: ``__type`` names a modeled exception of the service (or an
  AWS protocol-level one), ``message`` is a string, the status is 500 for
  ServerException alone and 4xx otherwise, and an ``X-Amzn-ErrorType``
  header, if sent, equals ``__type``;
- every answer carries ``x-amzn-RequestId`` and the JSON 1.1 content type.

JSON ``null`` is accepted where a member may be absent: botocore and the Go
SDK both read it as absent.

Use:
    import strict
    checker = strict.attach(client)           # raise on the first violation
    checker = strict.attach(client, raise_=False); ...; checker.violations
    strict.validate("DescribeTasks", body)    # -> ["tasks[0].cpu: ...", ...]
"""

import json

import botocore.session

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

# Errors AWS's front end answers before an operation runs; they are in no
# service model, and each has its own status.
PROTOCOL_ERRORS = {
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "RequestEntityTooLargeException": 413,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
}

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

_MODELS = {}


def service_model(service="ecs"):
    """botocore's model of the service (loaded once)."""
    if service not in _MODELS:
        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


class StrictViolation(AssertionError):
    """A response that the model (or a strict SDK) would not accept."""

    def __init__(self, operation, violations):
        self.operation = operation
        self.violations = list(violations)
        super().__init__(
            f"{operation}: {len(self.violations)} violation(s) of the model:\n  "
            + "\n  ".join(self.violations)
        )


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs):
    # Duplicate keys: Python keeps the last, Go's decoder the last too, but
    # two values for one member mean the server built the body wrongly.
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse(raw):
    """The raw body as Python values, or raise ValueError saying why not."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    return json.loads(raw, object_pairs_hook=_pairs, parse_constant=_no_constant)


def _join(path, member):
    return f"{path}.{member}" if path else member


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_scalar(shape, value, path, out):
    t = shape.type_name
    if t == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected a string ({shape.name}), got {_kind(value)}")
        elif shape.enum and value not in shape.enum:
            out.append(f"{path}: {value!r} is not one of {shape.name}'s values {list(shape.enum)}")
    elif t in ("integer", "long"):
        lo, hi = INT32 if t == "integer" else INT64
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: expected an integer ({shape.name}), got {_kind(value)}")
        elif not lo <= value <= hi:
            out.append(f"{path}: {value} is out of range for a {t}")
    elif t in ("double", "float"):
        if not _is_number(value):
            out.append(f"{path}: expected a number ({shape.name}), got {_kind(value)}")
    elif t == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: expected a boolean ({shape.name}), got {_kind(value)}")
    elif t == "timestamp":
        if not _is_number(value):
            out.append(f"{path}: expected epoch seconds as a JSON number, got {_kind(value)}")
    elif t == "blob":
        if not isinstance(value, str):
            out.append(f"{path}: expected a base64 string ({shape.name}), got {_kind(value)}")
    else:
        out.append(f"{path}: shape type {t} is not known to strict.py")


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    if isinstance(value, str):
        return f"string {json.dumps(value)[:60]}"
    if isinstance(value, list):
        return "an array"
    return "an object"


def check_shape(shape, value, path, out):
    """Append to `out` every way `value` (parsed JSON) breaks `shape`."""
    if value is None:
        return  # null = absent, for botocore and the Go SDK alike
    t = shape.type_name
    if t == "structure":
        _check_structure(shape, value, path, out)
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected an array ({shape.name}), got {_kind(value)}")
            return
        for i, item in enumerate(value):
            if item is None:
                out.append(f"{path}[{i}]: null in a list")
            else:
                check_shape(shape.member, item, f"{path}[{i}]", out)
    elif t == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected an object ({shape.name}), got {_kind(value)}")
            return
        for key, item in value.items():
            check_shape(shape.key, key, f"{path}{{{key}}}", out)
            check_shape(shape.value, item, f"{path}[{key!r}]", out)
    else:
        _check_scalar(shape, value, path or "<body>", out)


def _check_structure(shape, value, path, out):
    if not isinstance(value, dict):
        out.append(f"{path or '<body>'}: expected an object ({shape.name}), got {_kind(value)}")
        return
    members = shape.members
    for key, item in value.items():
        if key not in members:
            out.append(f"{_join(path, key)}: not a member of {shape.name}")
            continue
        check_shape(members[key], item, _join(path, key), out)
    for key in shape.required_members:
        if value.get(key) is None:
            out.append(f"{_join(path, key)}: required by {shape.name}, missing")


def _operation(operation):
    try:
        return service_model().operation_model(operation)
    except Exception as e:  # OperationNotFoundError
        raise ValueError(f"{operation} is not an ECS operation: {e}") from None


def validate(operation, body):
    """Every violation of `operation`'s output shape in a successful body
    (a dict already parsed, or the raw bytes/str), as "path: why" strings."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = parse(body)
        except ValueError as e:
            return [f"<body>: not a JSON object: {e}"]
    shape = _operation(operation).output_shape
    out = []
    if shape is None:
        if body != {}:
            out.append("<body>: the operation has no output, expected {}")
        return out
    check_shape(shape, body, "", out)
    return out


def validate_error(operation, status, body, headers=None, in_operation=False):
    """Every violation in an error answer. With `in_operation`, `__type`
    must be one of the exceptions the model lists for this operation (the
    Go SDK maps only those to typed errors; others become generic)."""
    headers = headers or {}
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = parse(body)
        except ValueError as e:
            return [f"<error body>: not a JSON object: {e}"]
    if not isinstance(body, dict):
        return [f"<error body>: expected an object, got {_kind(body)}"]
    out = []
    name = body.get("__type")
    if not isinstance(name, str):
        return [f"__type: expected the exception's name, got {_kind(name)}"]
    model = service_model()
    exceptions = {s.name: s for s in model.error_shapes}
    if name in exceptions:
        shape = exceptions[name]
        # botocore keeps `fault` (a server-side error) only in the raw shape.
        want = 500 if shape._shape_model.get("fault") else 400
        if status != want:
            out.append(f"status: {name} must be HTTP {want}, got {status}")
        if in_operation and name not in {e.name for e in _operation(operation).error_shapes}:
            out.append(f"__type: {name} is not among {operation}'s modeled errors")
        members = {k: v for k, v in body.items() if k != "__type"}
        check_shape(shape, members, "", out)
    elif name in PROTOCOL_ERRORS:
        if status != PROTOCOL_ERRORS[name]:
            out.append(f"status: {name} must be HTTP {PROTOCOL_ERRORS[name]}, got {status}")
        for key in body:
            if key not in ("__type", "message"):
                out.append(f"{key}: not a member of {name}")
    else:
        out.append(f"__type: {name!r} is no modeled ECS exception")
    if not isinstance(body.get("message"), str):
        out.append(f"message: expected a string, got {_kind(body.get('message'))}")
    header = _header(headers, "x-amzn-errortype")
    if header is not None and header.split(":")[0] != name:
        out.append(f"X-Amzn-ErrorType header {header!r} differs from __type {name!r}")
    return out


def _header(headers, name):
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def validate_response(operation, status, headers, body, check_headers=True):
    """Every violation in one raw HTTP answer (status, headers, bytes)."""
    out = []
    if check_headers:
        if not _header(headers, "x-amzn-requestid"):
            out.append("x-amzn-RequestId header missing")
        ctype = _header(headers, "content-type") or ""
        if ctype.split(";")[0].strip() != JSON_CONTENT_TYPE:
            out.append(f"Content-Type {ctype!r}, expected {JSON_CONTENT_TYPE}")
    if 200 <= status < 300:
        out += validate(operation, body)
    else:
        out += validate_error(operation, status, body, headers)
    return out


class Checker:
    """What `attach` registers: validates every answer a client receives."""

    def __init__(self, raise_=True, check_headers=True):
        self.raise_ = raise_
        self.check_headers = check_headers
        self.violations = []  # "Operation: path: why"
        self.calls = 0

    def __call__(self, operation_model, response_dict, **_):
        self.calls += 1
        op = operation_model.name
        status = response_dict.get("status_code", 0)
        headers = response_dict.get("headers", {})
        body = response_dict.get("body", b"")
        found = validate_response(op, status, headers, body, self.check_headers)
        self.violations += [f"{op}: {v}" for v in found]
        if found and self.raise_:
            raise StrictViolation(op, found)

    def assert_clean(self):
        if self.violations:
            raise StrictViolation(f"{self.calls} calls", self.violations)


def attach(client, raise_=True, check_headers=True):
    """Validate every raw answer `client` (a boto3 ECS client) receives,
    before botocore parses it. Returns the Checker (its `violations`)."""
    checker = Checker(raise_=raise_, check_headers=check_headers)
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parse.{service_id}.*", checker)
    return checker
