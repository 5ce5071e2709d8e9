"""The load generator sends on its schedule, reads each answer's status, and counts a silent
server's requests as timeouts and a closed port's as refused (core/bench/loadgen.py)."""

import socket
import threading

from core.bench.loadgen import Request, run_open_loop


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _serve(sock: socket.socket, count: int, statuses: list[int], seen: list[bytes]) -> None:
    for i in range(count):
        client, _ = sock.accept()
        seen.append(client.recv(4096))
        client.sendall(f"HTTP/1.1 {statuses[i % len(statuses)]} X\r\nContent-Length: 0\r\n\r\n".encode())
        client.close()


def test_answers_are_counted_by_status_and_timed_from_their_schedule():
    sock = _listening()
    seen: list[bytes] = []
    server = threading.Thread(target=_serve, args=(sock, 10, [200, 404], seen), daemon=True)
    server.start()
    result = run_open_loop(
        host="127.0.0.1",
        port=sock.getsockname()[1],
        make=lambda i: Request("POST", f"/r/{i}", {"X-N": str(i)}, b"{}"),
        rate=50,
        duration=0.2,
    )
    server.join(5)
    sock.close()
    assert dict(result.statuses) == {200: 5, 404: 5} and not result.errors
    assert len(result.latencies_ms) == 10 and all(0 < ms < 1000 for ms in result.latencies_ms)
    assert result.elapsed >= 0.18  # the last of 10 at 50/s is sent 0.18 s after the first
    assert seen[0].startswith(b"POST /r/0 HTTP/1.1\r\n") and b"Content-Length: 2" in seen[0]


def test_a_silent_server_times_out_and_a_closed_port_refuses():
    sock = _listening()  # accepts into its backlog, never answers
    port = sock.getsockname()[1]
    silent = run_open_loop(
        host="127.0.0.1", port=port, make=lambda i: Request("GET", "/"), rate=50, duration=0.1, timeout=0.2
    )
    sock.close()
    closed = run_open_loop(
        host="127.0.0.1", port=port, make=lambda i: Request("GET", "/"), rate=50, duration=0.1
    )
    assert dict(silent.errors) == {"TimeoutError": 5} and not silent.statuses
    assert dict(closed.errors) == {"ConnectionRefusedError": 5} and not closed.statuses
