"""Transport edges: the only host code that touches radios and ports.

* :mod:`legrep.transport.ble` -- BLE sensors through bleak (real adapters, or the bumble simulator).
* :mod:`legrep.transport.serial` -- wired sensors through pyserial (SLIP frames, docs/protocol.md section 7).

An edge turns what it sees into :class:`legrep.records.Record` values stamped with host seconds since
the session start (data packets, control requests sent and replies, status records, events) and
hands each to :class:`legrep.live_core.SessionCore` (and to a :class:`legrep.recording.RecordingWriter`),
so live capture and replay share one path. Transports are imported lazily: importing this package
does not need bleak or pyserial.
"""
