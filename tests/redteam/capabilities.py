"""Attack: look for capabilities left to the child. As an ordinary user the template holds every
capability in its own user namespace (it makes the children's namespaces there); a child that kept
them could undo its mounts wherever the system-call filter is missing.

Expected: the child's effective, permitted and bounding sets are empty, as root and with user
namespaces alike; the honest score is kept.
"""
with open("/proc/self/status") as _status:
    for _line in _status:
        if _line.startswith(("CapEff", "CapPrm", "CapBnd", "CapAmb")):
            print(_line.strip())
