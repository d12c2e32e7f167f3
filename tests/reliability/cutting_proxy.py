"""A TCP proxy on loopback that cuts the connection once, in the middle of an answer.

Why a proxy and not the simulator's own failure plan: the simulator can only refuse a request
whole (close before answering, or HTTP 500); a network that dies while a page is on the wire
leaves the client with half a body, which is a different error on the client side
(ChunkedEncodingError / IncompleteRead rather than ConnectionError), and the one to prove.
"""
from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``upstream_port``; once ``cut_after_bytes`` bytes have gone
    from the server to the client (over all connections), send up to that byte, then cut
    both sides of that connection. Later connections pass through untouched."""

    def __init__(self, upstream_port: int, cut_after_bytes: int) -> None:
        self.upstream_port, self.cut_after_bytes = upstream_port, cut_after_bytes
        self.bytes_down = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True, name="cutting-proxy").start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, downstream: bool) -> None:
        try:
            while chunk := source.recv(4096):
                if downstream:
                    with self._lock:
                        budget = self.cut_after_bytes - self.bytes_down if not self.cuts else len(chunk)
                        if budget < len(chunk):
                            self.cuts += 1
                            cut, chunk = True, chunk[:max(budget, 0)]
                        else:
                            cut = False
                        self.bytes_down += len(chunk)
                    if chunk:
                        target.sendall(chunk)
                    if cut:
                        break
                else:
                    target.sendall(chunk)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.close()
