"""Network events from a thread blocked in NtDeviceIoControlFile on an AFD (Winsock) endpoint.

Winsock's connect() and accept() are device-control requests on a handle to
``\\Device\\Afd``: the handle (argument 1) and the control code (argument 6) together say a
connection is being made. Without both, the call is only I/O and the thread gets a
thread-state event.
"""

from __future__ import annotations

from .activity import Activity, CallContext

AFD_DEVICE = "\\device\\afd"
AFD_CODES = {
    0x12007: ("connection_attempted", "IOCTL_AFD_CONNECT"),
    0x120C7: ("connection_attempted", "IOCTL_AFD_SUPER_CONNECT"),
    0x12010: ("connection_accepted", "IOCTL_AFD_ACCEPT"),
}


def decode_device_control(call: CallContext) -> Activity | None:
    _, info = call.handle(1, "device handle")
    code = call.args.arg(6)
    if info is None or not (info.name or "").lower().startswith(AFD_DEVICE) or code not in AFD_CODES:
        return None
    action, name = AFD_CODES[int(code)]
    return Activity("network", action, ["connection", "start"], {},
                    [f"{name} on an AFD endpoint ({info.name})"])
