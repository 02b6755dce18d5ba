"""A small client for anomalyd over ZeroMQ.

Every request is one protobuf `Request` frame sent on a DEALER socket to the
score or control endpoint; the daemon answers with one `Response` frame that
echoes the request id. Alerts are two frames, [stream][Alert], on a PUB
socket. Needs pyzmq and protobuf, and the module `anomalyd_pb2` generated
from proto/anomalyd.proto: inside the package when installed with pip
(setup.py runs protoc), else a top-level module (the CMake build puts one in
<build>/clients/python). NumPy is imported only by the calls that take or
return arrays, pandas only by to_dataframe().
"""

import array
import importlib.util
import itertools
import os
import random
import sys
import time

import zmq
import zmq.auth
import zmq.utils.monitor

if importlib.util.find_spec(f"{__package__}.anomalyd_pb2") is not None:
    from . import anomalyd_pb2 as pb  # installed: generated into the package
else:
    try:
        import anomalyd_pb2 as pb  # in the source tree: the CMake build's copy
    except ModuleNotFoundError as e:
        if e.name != "anomalyd_pb2":
            raise
        raise ImportError(
            f"anomalyd_client ({os.path.dirname(__file__)}): no anomalyd_pb2 "
            "module. Install the package (pip install clients/python, which runs "
            "protoc; a script in clients/python then needs python -P, or this "
            "source copy comes first) or put the CMake build's clients/python "
            "folder on PYTHONPATH") from None


def _endpoint(port):
    return f"tcp://127.0.0.1:{port}"


# The daemon's default endpoints (proto/anomalyd.proto's DefaultPort).
DEFAULT_SCORE = _endpoint(pb.DEFAULT_PORT_SCORE)
DEFAULT_CONTROL = _endpoint(pb.DEFAULT_PORT_CONTROL)
DEFAULT_ALERTS = _endpoint(pb.DEFAULT_PORT_ALERTS)


def _numpy(what):
    """numpy, imported on first use; ImportError saying what needs it."""
    try:
        import numpy
    except ImportError as e:
        raise ImportError(
            f"{what} needs NumPy (Debian: apt-get install python3-numpy; pip: "
            "pip install 'anomalyd-client[numpy]'); score(), query() and "
            "status() take and return plain lists without it") from e
    return numpy


def to_dataframe(rows, columns=None):
    """A pandas DataFrame of result dicts (score(), query(), models() or
    tail() rows), one row each; `columns` names the columns of an empty
    one. ImportError when pandas is not installed."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "to_dataframe needs pandas (Debian: apt-get install python3-pandas; "
            "pip: pip install 'anomalyd-client[pandas]')") from e
    rows = list(rows)
    return pandas.DataFrame(rows, columns=None if rows else columns)


class Rows(list):
    """A list of result dicts, as score(), query() and models() return;
    to_dataframe() makes it a pandas DataFrame."""

    def __init__(self, rows=(), columns=None):
        super().__init__(rows)
        self.columns = columns

    def to_dataframe(self):
        return to_dataframe(self, self.columns)


class AnomalydError(Exception):
    """A typed error from the daemon (or from the client, for a timeout or
    a refused key).

    code_name is the ErrorCode's name ("WRONG_DIMENSION", "UNKNOWN_STREAM",
    ...; "IO_ERROR" when no reply came in time, "UNAUTHENTICATED" when the
    daemon refused this client's CURVE key), record_index the offending
    record in the request or -1 when the error is about the whole request.
    """

    def __init__(self, code_name, message, record_index=-1, record_id=""):
        self.code_name = code_name
        self.message = message
        self.record_index = record_index
        self.record_id = record_id
        where = f" (record {record_index})" if record_index >= 0 else ""
        super().__init__(f"{code_name}: {message}{where}")

    @property
    def code(self):
        """The numeric ErrorCode."""
        return pb.ErrorCode.Value(self.code_name)


_ORDERS = {"time": pb.NEWEST_FIRST, "score": pb.HIGHEST_SCORE_FIRST,
           "oldest": pb.OLDEST_FIRST}


def _score_result(r, contributions):
    d = {
        "id": r.id,
        "index": r.index,
        "score": r.score,
        "reconstruction": r.reconstruction,
        "kl": r.kl,
        "flagged": r.flagged,
        "threshold": r.threshold,
        "p_value": r.p_value,
        "model_version": r.model_version,
        "stored": r.stored,
    }
    if contributions:
        d["contributions"] = list(r.contributions)
    return d


def _varint(n):
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _key(message, field, size):
    """The key and length of length-delimited `field` of `message` (a
    message or a packed field) whose payload is `size` bytes."""
    number = message.DESCRIPTOR.fields_by_name[field].number
    return _varint(number << 3 | 2) + _varint(size)


def _read_varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf):
    """{field number: [payload memoryviews]} of the length-delimited fields
    of a message's wire bytes (others skipped)."""
    out, pos = {}, 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            out.setdefault(number, []).append(buf[pos:pos + size])
            pos += size
        else:
            raise ValueError(f"wire type {wire}")
    return out


# ScoreColumns fields read straight into arrays: packed floats and doubles
# are little-endian IEEE values, packed bools one byte each.
_COLUMN_TYPES = {"reconstruction": "<f4", "kl": "<f4", "score": "<f4",
                 "p_value": "<f8", "threshold": "<f4", "contributions": "<f4",
                 "flagged": "u1", "stored": "u1"}


def _columns(raw, n):
    """The arrays of a columnar reply's wire bytes `raw` for n records (np.array()
    over protobuf's repeated fields cost 0.4 ms a column at 4096 records)."""
    np = _numpy("score_columns")
    score = b"".join(_fields(memoryview(raw)).get(
        pb.Response.DESCRIPTOR.fields_by_name["score"].number, []))
    columns = b"".join(_fields(memoryview(score)).get(
        pb.ScoreResponse.DESCRIPTOR.fields_by_name["columns"].number, []))
    by_number = _fields(memoryview(columns))
    out = {}
    for name, dtype in _COLUMN_TYPES.items():
        number = pb.ScoreColumns.DESCRIPTOR.fields_by_name[name].number
        a = np.frombuffer(b"".join(by_number.get(number, [])), dtype=dtype)
        out[name] = a.astype(bool) if dtype == "u1" else a.copy()
    # uint32 varints: one byte each below 128, else decoded by protobuf.
    number = pb.ScoreColumns.DESCRIPTOR.fields_by_name["model_version"].number
    versions = np.frombuffer(b"".join(by_number.get(number, [])), dtype="u1")
    if len(versions) == n:
        out["model_version"] = versions.astype(np.uint32)
    else:
        out["model_version"] = np.array(
            pb.ScoreColumns.FromString(columns).model_version, dtype=np.uint32)
    return out


def _is_ndarray(x):
    """Whether x is a NumPy array, without importing NumPy (whoever made
    one has)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def _dense_values(data):
    """(rows, dim, little-endian float32 bytes) of a dense batch: a list or
    tuple of rows of numbers, or one row of numbers (one record), read with
    the array module; anything else (a NumPy array, a DataFrame, a list of
    NumPy rows: 18 times faster there) goes through numpy.asarray."""
    if isinstance(data, (list, tuple)) and not (data and _is_ndarray(data[0])):
        if data and not hasattr(data[0], "__len__"):
            data = [data]  # one record
        dim = len(data[0]) if data else 0
        values = array.array("f")
        for i, row in enumerate(data):
            if len(row) != dim:
                raise ValueError(f"score: row {i} has {len(row)} values, row 0 has {dim}")
            values.extend(row)
        if sys.byteorder != "little":
            values.byteswap()
        return len(data), dim, memoryview(values).cast("B")
    np = _numpy("scoring an array that is not a list")
    x = np.asarray(data, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise ValueError(f"score: expected a 2-D array, got shape {x.shape}")
    return x.shape[0], x.shape[1], memoryview(np.ascontiguousarray(x, dtype="<f4")).cast("B")


def _dense_score(data, stream, ids, event_times_us, contributions, columnar):
    """(rows, dim, the wire bytes of Request.score) for a dense batch,
    joined in one copy. The values go in as float32 bytes (a packed
    repeated float is little-endian IEEE floats): protobuf's extend() of a
    Python list took 10 ms for 4096 x 38 values."""
    n, dim, values = _dense_values(data)
    dense = pb.DenseBatch(stream=stream, dim=dim)
    if ids is not None:
        dense.ids.extend(str(i) for i in ids)
    if event_times_us is not None:
        dense.event_times_us.extend(int(t) for t in event_times_us)
    dense_parts = [dense.SerializeToString(), _key(dense, "values", len(values)), values]
    dense_size = sum(len(p) for p in dense_parts)
    score = pb.ScoreRequest(contributions=contributions, columnar=columnar)
    score_parts = [score.SerializeToString(), _key(score, "dense", dense_size)] + dense_parts
    score_size = sum(len(p) for p in score_parts)
    return n, dim, b"".join([_key(pb.Request(), "score", score_size)] + score_parts)


_ANOMALY_COLUMNS = ["id", "record_id", "stream", "event_time_us", "scored_time_us",
                    "score", "reconstruction", "kl", "threshold", "model_version",
                    "features", "contributions", "labels"]
_MODEL_COLUMNS = ["stream", "version", "bundle_path", "created_us", "baseline_rows",
                  "active", "val_loss"]


def _anomaly(a):
    return {
        "id": a.id,
        "record_id": a.record_id,
        "stream": a.stream,
        "event_time_us": a.event_time_us,
        "scored_time_us": a.scored_time_us,
        "score": a.score,
        "reconstruction": a.reconstruction,
        "kl": a.kl,
        "threshold": a.threshold,
        "model_version": a.model_version,
        "features": list(a.features),
        "contributions": list(a.contributions),
        "labels": dict(a.labels),
    }


def _training(t):
    return {
        "state": pb.TrainingState.Name(t.state),
        "target_version": t.target_version,
        "epoch": t.epoch,
        "max_epochs": t.max_epochs,
        "train_loss": t.train_loss,
        "val_loss": t.val_loss,
        "error": t.error,
    }


def _stream_status(s):
    return {
        "stream": s.stream,
        "model_version": s.model_version,
        "dim": s.dim,
        "feature_names": list(s.feature_names),
        "threshold": s.threshold,
        "threshold_method": pb.ThresholdMethod.Name(s.threshold_method),
        "scored": s.scored,
        "flagged": s.flagged,
        "training": _training(s.training),
    }


def _curve_options(server_key, client_key):
    """Socket options for a CURVE endpoint ({} for plaintext) from key files
    in ZeroMQ's certificate format (anomalyctl keygen writes them)."""
    if server_key is None and client_key is None:
        return {}
    if server_key is None or client_key is None:
        raise ValueError("CURVE needs both server_key and client_key")
    mode = os.stat(client_key).st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"{client_key} has mode {mode:04o}: a secret key must not "
                         "be readable or writable by group or others")
    server_public, _ = zmq.auth.load_certificate(server_key)
    public, secret = zmq.auth.load_certificate(client_key)
    if secret is None:
        raise ValueError(f"{client_key}: no secret-key (give the NAME.key_secret file)")
    return {zmq.CURVE_SERVERKEY: server_public, zmq.CURVE_PUBLICKEY: public,
            zmq.CURVE_SECRETKEY: secret}


# Each monitor its own inproc address (pyzmq's default names it after a file
# descriptor, which a reopened socket may get again).
_MONITORS = itertools.count()


class _Endpoint:
    """One DEALER connection with Lazy Pirate recovery: on a timeout the
    socket is closed and reopened, so a late reply can never be taken for
    the answer to a later request. It connects at the first request: a
    client whose key the daemon allows on score only never knocks on
    control (where the daemon would log its key as refused). With CURVE, a
    socket monitor tells a refused key (UNAUTHENTICATED) from silence."""

    def __init__(self, ctx, name, address, timeout_ms, curve):
        self._ctx = ctx
        self.name = name
        self.address = address
        self.timeout_ms = timeout_ms
        self._curve = curve
        self._next_id = random.getrandbits(62) | 1
        self._socket = None
        self._monitor = None

    def _open(self):
        if not self.address:
            raise ValueError(f"this client has no {self.name} endpoint")
        self.close()
        self._socket = self._ctx.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        for option, value in self._curve.items():
            self._socket.setsockopt(option, value)
        if self._curve:
            # The daemon answers a refused key with nothing at all; only
            # this event says so.
            self._monitor = self._socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                f"inproc://anomalyd-client-monitor-{next(_MONITORS)}")
        self._socket.connect(self.address)

    def close(self):
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _refused(self):
        """Whether the daemon refused this client's key since the socket
        opened; if so the socket is reopened."""
        refused = False
        while self._monitor is not None and self._monitor.poll(0):
            event = zmq.utils.monitor.recv_monitor_message(self._monitor)
            refused |= event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        if refused:
            self._open()
        return refused

    def _unauthenticated(self):
        return AnomalydError(
            "UNAUTHENTICATED", f"{self.address} refused this client's key (CURVE): "
            f"it is not on the {self.name} endpoint's allow-list")

    def _wait(self, timeout_ms, event):
        """Whether the socket is ready for `event` (zmq.POLLIN, POLLOUT)
        within timeout_ms; AnomalydError UNAUTHENTICATED as soon as the
        daemon refuses the key."""
        if self._monitor is None:
            return bool(self._socket.poll(timeout_ms, event))
        poller = zmq.Poller()
        poller.register(self._socket, event)
        poller.register(self._monitor, zmq.POLLIN)
        ready = dict(poller.poll(timeout_ms))
        if self._monitor in ready and self._refused():
            raise self._unauthenticated()
        return self._socket in ready

    def _left_ms(self, deadline):
        return int((deadline - time.monotonic()) * 1000)

    def _send(self, data, deadline):
        """Sends `data`; False when it could not go before `deadline`. A
        DEALER cannot send while it has no connection (after the daemon
        refused this client's key: never), so it is not left to block."""
        while True:
            try:
                # copy=True: pyzmq's zero-copy send of large buffers (its
                # default past 64 kB) cost more than copying them.
                self._socket.send(data, zmq.NOBLOCK, copy=True)
                return True
            except zmq.Again:
                pass
            left_ms = self._left_ms(deadline)
            if left_ms <= 0:
                return False
            self._wait(left_ms, zmq.POLLOUT)

    def call(self, request, retries=0, body=b"", raw=False):
        """Sends `request` (followed by `body`, wire bytes of more of its
        fields) and returns the Response, with raw: (Response, its wire
        bytes); raises AnomalydError on an error reply, UNAUTHENTICATED
        when the daemon refused the client's key, IO_ERROR when no reply
        came after 1 + retries tries."""
        if self._socket is None:
            self._open()
        for attempt in range(retries + 1):
            request_id = self._next_id
            self._next_id += 1
            request.request_id = request_id
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            sent = self._send(request.SerializeToString() + body, deadline)
            while sent:
                left_ms = self._left_ms(deadline)
                if left_ms <= 0:
                    break
                if not self._wait(left_ms, zmq.POLLIN):
                    continue  # the time is up, or a monitor event that is not a refusal
                response = pb.Response()
                data = self._socket.recv()
                try:
                    response.ParseFromString(data)
                except Exception as e:  # google.protobuf DecodeError
                    raise AnomalydError("MALFORMED", f"reply from {self.address} "
                                        f"does not parse: {e}") from None
                if response.request_id not in (request_id, 0):
                    continue  # a stale reply to an earlier request
                if response.HasField("error") and response.error.code != pb.OK:
                    err = response.error
                    raise AnomalydError(pb.ErrorCode.Name(err.code), err.message,
                                        err.record_index, err.record_id)
                return (response, data) if raw else response
            self._open()  # Lazy Pirate: drop the late reply
        raise AnomalydError(
            "IO_ERROR", f"no reply from {self.address} within {self.timeout_ms} ms"
            + (f" ({retries + 1} tries)" if retries else ""))


class Client:
    """A connection to one anomalyd. Not thread-safe: one Client per thread.

    score: the score endpoint, which answers scoring, query() and status();
    control: the control endpoint (models, retrain, rollback, calibrate,
    reload, cancel_retrain); alerts: the PUB endpoint that tail() subscribes
    to. The defaults are the daemon's (DEFAULT_SCORE, DEFAULT_CONTROL,
    DEFAULT_ALERTS); None leaves an endpoint out, and its calls raise
    ValueError. Sockets connect at their first request, so a client that
    only scores and queries needs a key for the score endpoint only.
    timeout_ms bounds the wait for each reply; read-only requests (status,
    query, models) are retried `retries` times on a timeout, the others
    never (a retried score could store the same anomaly twice). For a daemon
    with [auth] on, server_key is the daemon's public key file (NAME.key)
    and client_key this client's secret key file (NAME.key_secret, mode
    0600); a request to an endpoint that refuses the key raises
    UNAUTHENTICATED.

    Feature rows are lists of numbers (or NumPy arrays, which need NumPy
    only because the caller has them); results are dicts of plain Python
    values, in a Rows list that to_dataframe() turns into pandas.
    """

    def __init__(self, score=DEFAULT_SCORE, control=DEFAULT_CONTROL,
                 alerts=DEFAULT_ALERTS, timeout_ms=30000, retries=2,
                 server_key=None, client_key=None):
        self._curve = _curve_options(server_key, client_key)
        self._ctx = zmq.Context()
        self._score = _Endpoint(self._ctx, "score", score, timeout_ms, self._curve)
        self._control = _Endpoint(self._ctx, "control", control, timeout_ms, self._curve)
        self._alerts = alerts
        self._retries = retries
        self._feature_names = {}

    def close(self):
        self._score.close()
        self._control.close()
        self._ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- scoring --------------------------------------------------------

    def score(self, data, stream="default", contributions=False, ids=None,
              event_times_us=None):
        """Scores records and returns one dict per record, in order (a
        Rows list): id, index, score, reconstruction, kl, flagged,
        threshold, p_value, model_version, stored (and contributions, a
        list, when asked for).

        data is either rows of numbers (one row per record, the stream's
        features in model order; sent as one dense batch): a list of lists,
        one list of numbers for one record, or a 2-D NumPy array; or a list
        of dicts mapping the stream's feature names to values (the names
        come from status(); a dict may also hold "id", "event_time_us" and
        "labels").
        """
        if not (isinstance(data, (list, tuple)) and data and isinstance(data[0], dict)):
            _, _, body = _dense_score(data, stream, ids, event_times_us, contributions, False)
            resp = self._score.call(pb.Request(), body=body)
            return Rows(_score_result(r, contributions) for r in resp.score.results)
        req = pb.Request()
        req.score.contributions = contributions
        names = self._names(stream)
        for i, row in enumerate(data):
            rec = req.score.records.add()
            rec.stream = stream
            try:
                rec.features.extend(float(row[n]) for n in names)
            except KeyError as e:
                raise AnomalydError(
                    "INVALID_ARGUMENT",
                    f"feature {e.args[0]!r} missing (stream {stream!r} has "
                    f"{', '.join(names)})", i) from None
            rec.id = str(row.get("id", ids[i] if ids is not None else ""))
            rec.event_time_us = int(row.get(
                "event_time_us",
                event_times_us[i] if event_times_us is not None else 0))
            for k, v in row.get("labels", {}).items():
                rec.labels[str(k)] = str(v)
        resp = self._score.call(req)
        return Rows(_score_result(r, contributions) for r in resp.score.results)

    def score_columns(self, data, stream="default", contributions=False,
                      ids=None, event_times_us=None):
        """Scores rows (a 2-D array or a list of lists, one row per record)
        and returns one NumPy array per field, row i for record i: score,
        reconstruction, kl, p_value, threshold, model_version, flagged and
        stored (bool), and contributions (n x dim) when asked for. Needs
        NumPy (ImportError without it). The daemon answers in columns
        (ScoreRequest.columnar), read straight into the arrays: at 4096
        records a call, 2.6 times the records/s of score() (1.7 times at
        256; bench/RESULTS.md).
        """
        _numpy("score_columns")  # fail before sending, not after
        n, dim, body = _dense_score(data, stream, ids, event_times_us, contributions, True)
        _, raw = self._score.call(pb.Request(), body=body, raw=True)
        out = _columns(raw, n)
        if contributions:
            out["contributions"] = out["contributions"].reshape(n, dim)
        else:
            del out["contributions"]
        return out

    def _names(self, stream):
        if stream not in self._feature_names:
            st = self.status()["streams"].get(stream)
            if st is None or not st["feature_names"]:
                raise AnomalydError("UNKNOWN_STREAM", f"stream {stream!r} has no model")
            self._feature_names[stream] = st["feature_names"]
        return self._feature_names[stream]

    # -- read-only requests on the score endpoint -----------------------

    def query(self, since_us=None, until_us=None, stream=None, min_score=None,
              limit=None, order="time", cursor=None, by_event_time=False,
              model_version=None):
        """Stored anomalies, newest first (order="time"), highest score
        first (order="score") or oldest first (order="oldest"), asked of the
        score endpoint. Returns
        (anomalies, next_cursor): anomalies a Rows list of dicts (id,
        record_id, stream, event_time_us, scored_time_us, score,
        reconstruction, kl, threshold, model_version, features,
        contributions, labels); next_cursor is None when there are no more
        rows, else pass it as cursor= to get the next page with the same
        filters."""
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(_ORDERS)}")
        req = pb.Request()
        q = req.query
        q.since_us = int(since_us or 0)
        q.until_us = int(until_us or 0)
        q.by_event_time = by_event_time
        q.stream = stream or ""
        if min_score is not None:
            q.min_score = float(min_score)
            q.has_min_score = True
        q.model_version = int(model_version or 0)
        q.order = _ORDERS[order]
        q.limit = int(limit or 0)
        q.cursor = cursor or ""
        resp = self._score.call(req, self._retries)
        return (Rows((_anomaly(a) for a in resp.query.anomalies), _ANOMALY_COLUMNS),
                resp.query.next_cursor or None)

    def status(self):
        """The daemon's state, asked of the score endpoint: version,
        started_us, device, storage_ok, storage_error, queue_depth and
        streams (a dict by stream name)."""
        req = pb.Request()
        req.status.SetInParent()
        return self._status_dict(self._score.call(req, self._retries).status)

    def _status_dict(self, st):
        for s in st.streams:  # keep the feature-name cache fresh
            if s.feature_names:
                self._feature_names[s.stream] = list(s.feature_names)
        return {
            "version": st.version,
            "started_us": st.started_us,
            "device": st.device,
            "storage_ok": st.storage_ok,
            "storage_error": st.storage_error,
            "queue_depth": st.queue_depth,
            "streams": {s.stream: _stream_status(s) for s in st.streams},
        }

    def wait_for_model(self, stream, version=1, timeout_s=None, poll_s=0.5):
        """Polls status() until `stream` serves model `version` or later
        and returns its status; AnomalydError TRAINING_FAILED when that
        version failed to train, IO_ERROR after timeout_s."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                st = self.status()["streams"].get(stream)
            except AnomalydError as e:
                if e.code_name != "IO_ERROR":
                    raise
                st = None
            if st is not None:
                if st["model_version"] >= version:
                    return st
                t = st["training"]
                if t["state"] == "FAILED" and t["target_version"] == version:
                    raise AnomalydError("TRAINING_FAILED", t["error"])
            if deadline is not None and time.monotonic() > deadline:
                raise AnomalydError("IO_ERROR", f"stream {stream!r}: model {version} "
                                    f"not serving after {timeout_s} s")
            time.sleep(poll_s)

    # -- control endpoint -----------------------------------------------

    def models(self, stream=""):
        """Model versions in the registry (all streams when stream is ""),
        a Rows list of dicts: stream, version, bundle_path, created_us,
        baseline_rows, active, val_loss."""
        req = pb.Request()
        req.models.stream = stream
        resp = self._control.call(req, self._retries)
        return Rows(({"stream": m.stream, "version": m.version,
                      "bundle_path": m.bundle_path, "created_us": m.created_us,
                      "baseline_rows": m.baseline_rows, "active": m.active,
                      "val_loss": m.val_loss} for m in resp.models.models),
                    _MODEL_COLUMNS)

    def retrain(self, stream, csv_path=None, from_reservoir=False, wait=False,
                timeout_s=None, poll_s=0.5):
        """Starts training a new model for `stream` from a CSV file (a path
        the daemon can read; made absolute here) or from the stored
        reservoir of normal records. Returns the version being trained; with
        wait=True returns once it serves (AnomalydError TRAINING_FAILED when
        it failed, IO_ERROR after timeout_s)."""
        if (csv_path is None) == (not from_reservoir):
            raise ValueError("retrain: give exactly one of csv_path and from_reservoir")
        req = pb.Request()
        req.retrain.stream = stream
        if csv_path is not None:
            req.retrain.csv_path = os.path.abspath(csv_path)
        else:
            req.retrain.from_reservoir = True
        version = self._control.call(req).retrain.target_version
        if wait:
            self.wait_for_model(stream, version, timeout_s, poll_s)
        return version

    def cancel_retrain(self, stream):
        """Asks the training of `stream` to stop; it ends in state
        CANCELLED_TRAINING and the serving model stays. AnomalydError
        NOT_FOUND when the stream is not training."""
        req = pb.Request()
        req.cancel_retrain.stream = stream
        self._control.call(req)

    def rollback(self, stream, to_version):
        """Serves version `to_version` of `stream` again (models() lists
        them). AnomalydError NOT_FOUND for an unknown version,
        FAILED_PRECONDITION while the stream is training."""
        req = pb.Request()
        req.rollback.stream = stream
        req.rollback.to_version = int(to_version)
        self._control.call(req)

    def calibrate(self, stream, method="quantile", contamination=None, risk=None,
                  value=None, force=False):
        """Sets the threshold of `stream` from its model's holdout scores:
        method "quantile" (contamination), "pot" (risk) or "fixed" (value;
        one that would flag more than half of the holdout records needs
        force=True). None takes the daemon's configured default. Returns
        the stream's status (threshold, threshold_method, ...) once the
        threshold is stored and served."""
        req = pb.Request()
        c = req.calibrate
        c.stream = stream
        try:
            c.method = pb.ThresholdMethod.Value(method.upper())
        except ValueError:
            raise ValueError(f"calibrate: method must be one of "
                             f"{', '.join(n.lower() for n in pb.ThresholdMethod.keys())}") from None
        c.contamination = float(contamination or 0)
        c.risk = float(risk or 0)
        if value is not None:
            c.value = float(value)
        c.force = force
        st = self._status_dict(self._control.call(req).status)
        return st["streams"].get(stream)

    def reload(self):
        """Makes the daemon re-read its config (thresholds, limits,
        batching, recalibration, log level) and client keys, as SIGHUP
        does; it answers at once and reloads on its I/O thread."""
        req = pb.Request()
        req.reload.SetInParent()
        self._control.call(req)

    # -- alerts ---------------------------------------------------------

    def tail(self, stream="", count=None, timeout_ms=None, since_us=None):
        """Alerts as they are published: a generator of anomaly dicts.

        The subscription is made when tail() is called, not at the first
        next(), so alerts for records scored after this call are not missed
        (allow ZeroMQ a moment to connect first). stream="" follows every
        stream. With since_us (microseconds since the epoch), the stored
        anomalies scored since then come first, oldest first, and live
        alerts already yielded by that catch-up are skipped (by id). Ends
        after `count` alerts, or when none came for timeout_ms (None: waits
        forever). to_dataframe(list(...)) of it makes a DataFrame."""
        if not self._alerts:
            raise ValueError("this client has no alerts endpoint")
        sub = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        for option, value in self._curve.items():
            sub.setsockopt(option, value)
        sub.setsockopt(zmq.SUBSCRIBE, stream.encode())
        sub.connect(self._alerts)
        return self._tail(sub, stream, count, timeout_ms, since_us)

    def _catch_up(self, stream, since_us):
        cursor = None
        while True:
            rows, cursor = self.query(since_us=since_us, stream=stream or None,
                                      order="oldest", cursor=cursor)
            yield from rows
            if cursor is None:
                return

    def _tail(self, sub, stream, count, timeout_ms, since_us):
        seen = 0
        caught_up_to = 0
        try:
            if since_us is not None:
                time.sleep(0.2)  # let the subscription reach the daemon first
                for a in self._catch_up(stream, since_us):
                    if count is not None and seen >= count:
                        return
                    caught_up_to = max(caught_up_to, a["id"])
                    seen += 1
                    yield a
            while count is None or seen < count:
                if not sub.poll(timeout_ms if timeout_ms is not None else -1):
                    return
                frames = sub.recv_multipart()
                if len(frames) != 2:
                    continue
                alert = pb.Alert()
                try:
                    alert.ParseFromString(frames[1])
                except Exception:
                    continue
                if stream and alert.stream != stream:
                    continue  # ZeroMQ subscriptions match prefixes
                if 0 < alert.anomaly.id <= caught_up_to:
                    continue  # yielded by the catch-up
                seen += 1
                yield _anomaly(alert.anomaly)
        finally:
            sub.close(linger=0)
