"""Attack: reach a service on the grading machine: a TCP listener on 127.0.0.1, an abstract Unix
socket and a Unix socket file, then connect to the TCP listener once more without catching.

Expected, in every mode (also without a network namespace: root in Docker, an ordinary user,
bubblewrap's shared one): every connection fails, since the system-call filter refuses any socket
but AF_UNIX and every connect; the last failure is reported as a notice; the honest score is kept
and the listeners see no connection.
"""
import sys

_socket = sys.modules["socket"]
for _family, _address in ((_socket.AF_INET, ("127.0.0.1", REDTEAM["port"])),
                          (_socket.AF_UNIX, "\0" + REDTEAM["abstract"]),
                          (_socket.AF_UNIX, REDTEAM["unix_path"])):
    try:
        with _socket.socket(_family, _socket.SOCK_STREAM) as _client:
            _client.settimeout(2)
            _client.connect(_address)
            _client.sendall(b"hello from the sandbox")
            print("connected to", _address)
    except OSError as _error:
        print("could not connect to", _address, _error)
_socket.socket().connect(("127.0.0.1", REDTEAM["port"]))
