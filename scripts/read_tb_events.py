#!/usr/bin/env python3
"""Print the events of a TensorBoard event file as JSON lines (standard library only).

An independent reader of what trainer/report/tensorboard.cpp writes, used by its tests: TFRecord
framing (uint64 LE length, masked CRC-32C of the length, payload, masked CRC-32C of the
payload) around tensorflow.Event protobufs, decoded here with a small protobuf field walker.

Each event prints as one line:
    {"wall_time": 1.7e9, "step": 37, "file_version": "brain.Event:2", "scalars": {"loss": 2.34}}
("file_version" only when the event has one). Non-finite scalars print as the strings
"nan", "inf" and "-inf" so that every line is strict JSON.  A CRC mismatch or a malformed
record exits with status 1 and a message naming the byte offset.

    python scripts/read_tb_events.py FILE [--cross-check]

--cross-check additionally reads the file with the `tensorboard` package (if installed) and
compares its events with ours; exits 2 when tensorboard is not importable.
"""

import argparse
import json
import math
import struct
import sys


class EventFileError(Exception):
    pass


def _make_crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf, pos, end):
    """Returns (value, new_pos); buf offsets are absolute file offsets."""
    start = pos
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise EventFileError("byte offset %d: truncated varint" % start)
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise EventFileError("byte offset %d: varint longer than 64 bits" % start)
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise EventFileError("byte offset %d: varint longer than 10 bytes" % start)


def _read_field(buf, pos, end, depth):
    """Reads one field of the message in buf[pos:end]; offsets are absolute file offsets.

    Returns (number, wire_type, value, new_pos); value is an int for varint/fixed32/fixed64,
    (start, stop) for length-delimited, None for a group (skipped whole) or an end-group key.
    """
    key_at = pos
    key, pos = _varint(buf, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise EventFileError("byte offset %d: invalid field number 0" % key_at)
    value = None
    if wire == 0:
        value, pos = _varint(buf, pos, end)
    elif wire == 1:
        if end - pos < 8:
            raise EventFileError("byte offset %d: truncated fixed64" % pos)
        (value,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
    elif wire == 5:
        if end - pos < 4:
            raise EventFileError("byte offset %d: truncated fixed32" % pos)
        (value,) = struct.unpack_from("<I", buf, pos)
        pos += 4
    elif wire == 2:
        len_at = pos
        length, pos = _varint(buf, pos, end)
        if length > end - pos:
            raise EventFileError(
                "byte offset %d: field %d length %d exceeds the %d bytes left in the message"
                % (len_at, number, length, end - pos))
        value = (pos, pos + length)
        pos += length
    elif wire == 3:
        # A (deprecated) group: skip fields, nested groups included, up to the matching end-group.
        if depth > 64:
            raise EventFileError("byte offset %d: groups nested too deeply" % key_at)
        while True:
            if pos >= end:
                raise EventFileError("byte offset %d: unterminated group for field %d" % (key_at, number))
            inner_at = pos
            inner, inner_wire, _, pos = _read_field(buf, pos, end, depth + 1)
            if inner_wire == 4:
                if inner != number:
                    raise EventFileError("byte offset %d: end-group for field %d inside group %d"
                                         % (inner_at, inner, number))
                break
    elif wire != 4:
        raise EventFileError("byte offset %d: invalid wire type %d" % (key_at, wire))
    return number, wire, value, pos


def _fields(buf, pos, end):
    """Yields (field_number, wire_type, value) for the message in buf[pos:end]."""
    while pos < end:
        key_at = pos
        number, wire, value, pos = _read_field(buf, pos, end, 0)
        if wire == 4:
            raise EventFileError("byte offset %d: unmatched end-group for field %d" % (key_at, number))
        yield number, wire, value


def _decode_event(buf, start, stop):
    event = {"wall_time": 0.0, "step": 0, "scalars": {}}
    for number, wire, value in _fields(buf, start, stop):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", struct.pack("<Q", value))[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value  # int64
        elif number == 3 and wire == 2:
            event["file_version"] = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == 5 and wire == 2:
            for vnum, vwire, vval in _fields(buf, value[0], value[1]):
                if vnum != 1 or vwire != 2:
                    continue
                tag, simple = "", None
                for fnum, fwire, fval in _fields(buf, vval[0], vval[1]):
                    if fnum == 1 and fwire == 2:
                        tag = bytes(buf[fval[0]:fval[1]]).decode("utf-8", "replace")
                    elif fnum == 2 and fwire == 5:
                        simple = struct.unpack("<f", struct.pack("<I", fval))[0]
                if simple is not None:
                    event["scalars"][tag] = simple
    return event


def read_events(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = len(buf)
    pos = 0
    events = []
    while pos < n:
        rec = pos
        if n - pos < 12:
            raise EventFileError("byte offset %d: truncated record header (%d bytes left, 12 needed)"
                                 % (rec, n - pos))
        (length,) = struct.unpack_from("<Q", buf, pos)
        (len_crc,) = struct.unpack_from("<I", buf, pos + 8)
        if len_crc != masked_crc32c(buf[pos:pos + 8]):
            raise EventFileError("byte offset %d: record length CRC mismatch" % rec)
        pos += 12
        if length + 4 > n - pos:
            raise EventFileError("byte offset %d: record length %d exceeds the %d bytes remaining"
                                 % (rec, length, n - pos))
        payload = buf[pos:pos + length]
        (data_crc,) = struct.unpack_from("<I", buf, pos + length)
        if data_crc != masked_crc32c(payload):
            raise EventFileError("byte offset %d: record payload CRC mismatch" % rec)
        events.append(_decode_event(buf, pos, pos + length))
        pos += length + 4
    return events


def _json_float(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _cross_check(path, events):
    try:
        from tensorboard.backend.event_processing import event_file_loader
    except ImportError as e:
        print("read_tb_events: --cross-check needs the tensorboard package: %s" % e, file=sys.stderr)
        return 2
    # The legacy loader yields the Events as stored; EventFileLoader migrates simple_value to tensors.
    loader_cls = getattr(event_file_loader, "LegacyEventFileLoader", event_file_loader.EventFileLoader)
    theirs = list(loader_cls(path).Load())
    if len(theirs) != len(events):
        print("read_tb_events: tensorboard read %d events, we read %d" % (len(theirs), len(events)),
              file=sys.stderr)
        return 1
    for i, (tb, ours) in enumerate(zip(theirs, events)):
        scalars = {}
        for v in tb.summary.value:
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                scalars[v.tag] = v.simple_value
            elif kind == "tensor":
                from tensorboard.util import tensor_util
                scalars[v.tag] = float(tensor_util.make_ndarray(v.tensor).item())
        same = (tb.wall_time == ours["wall_time"] and tb.step == ours["step"]
                and tb.file_version == ours.get("file_version", "")
                and scalars.keys() == ours["scalars"].keys()
                and all((math.isnan(a) and math.isnan(ours["scalars"][k])) or a == ours["scalars"][k]
                        for k, a in scalars.items()))
        if not same:
            print("read_tb_events: event %d differs from tensorboard's: %s" % (i, tb), file=sys.stderr)
            return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--cross-check", action="store_true",
                    help="also read the file with the tensorboard package and compare")
    args = ap.parse_args()
    try:
        events = read_events(args.file)
    except EventFileError as e:
        print("read_tb_events: %s: %s" % (args.file, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("read_tb_events: %s" % e, file=sys.stderr)
        return 1
    for ev in events:
        out = {"wall_time": _json_float(ev["wall_time"]), "step": ev["step"]}
        if "file_version" in ev:
            out["file_version"] = ev["file_version"]
        out["scalars"] = {k: _json_float(v) for k, v in ev["scalars"].items()}
        print(json.dumps(out, allow_nan=False))
    if args.cross_check:
        return _cross_check(args.file, events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
