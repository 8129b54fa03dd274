"""A small TCP proxy between the services and the broker, to make the network slow or broken.

    python -m tests.faults.proxy LISTEN_PORT TARGET_PORT CONTROL_PORT

Plain threads, no eventlet: it runs as its own process so that nothing the test process does
can stall it. Commands, one line each on the control port, answered with a JSON line:
    pass            forward everything at once (the default)
    slow MS         hold every chunk MS milliseconds before forwarding it, both ways
    blackhole       forward nothing, close nothing: data is dropped and new connections hang,
                    as in a network partition; only heartbeats can tell
    heal            end a blackhole: every connection that lived through it is reset (TCP
                    connections do not survive a long partition), then pass
    reset           reset every connection now, then pass
    stats           connections open, accepted and reset so far, the mode
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time


class Proxy:
    def __init__(self, listen_port: int, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
        self.mode = "pass"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.connections: set[tuple[socket.socket, socket.socket]] = set()
        self.accepted = 0
        self.resets = 0

    # -- data path ------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        while self.mode == "blackhole":  # the SYN is answered, nothing else
            time.sleep(0.05)
            if getattr(client, "_closed", False):
                return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (client, upstream)
        with self.lock:
            self.connections.add(pair)
            self.accepted += 1
        threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    while self.mode == "blackhole":  # a partition hides the other side's close too
                        time.sleep(0.05)
                    break
                if self.mode == "blackhole":
                    continue  # dropped on the floor
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        self._close(pair, reset=False)

    def _close(self, pair, reset: bool) -> None:
        with self.lock:
            known = pair in self.connections
            self.connections.discard(pair)
        for s in pair:
            try:
                if reset:  # RST instead of FIN, like a connection that died
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        if reset and known:
            self.resets += 1

    def reset_all(self) -> int:
        with self.lock:
            pairs = list(self.connections)
        for pair in pairs:
            self._close(pair, reset=True)
        return len(pairs)

    # -- control --------------------------------------------------------------------
    def command(self, line: str) -> dict:
        words = line.split()
        if not words:
            return {"error": "empty command"}
        verb = words[0]
        if verb == "pass":
            self.mode, self.delay = "pass", 0.0
        elif verb == "slow":
            self.mode, self.delay = "slow", float(words[1]) / 1000
        elif verb == "blackhole":
            self.mode, self.delay = "blackhole", 0.0
        elif verb == "heal":
            self.mode = "pass"
            self.delay = 0.0
            return {"mode": self.mode, "reset": self.reset_all()}
        elif verb == "reset":
            self.mode, self.delay = "pass", 0.0
            return {"mode": self.mode, "reset": self.reset_all()}
        elif verb != "stats":
            return {"error": f"unknown command {verb!r}"}
        with self.lock:
            open_ = len(self.connections)
        return {"mode": self.mode, "delay_ms": self.delay * 1000, "open": open_, "accepted": self.accepted,
                "resets": self.resets}

    def control(self, port: int) -> None:
        server = socket.create_server(("127.0.0.1", port))
        while True:
            conn, _ = server.accept()
            with conn, conn.makefile("rw") as stream:
                for line in stream:
                    stream.write(json.dumps(self.command(line)) + "\n")
                    stream.flush()


class ProxyControl:
    """The test's side of the control port."""

    def __init__(self, port: int):
        self.port = port

    def __call__(self, command: str) -> dict:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn, conn.makefile("rw") as stream:
            stream.write(command + "\n")
            stream.flush()
            return json.loads(stream.readline())


def main() -> None:
    listen, target, control = (int(x) for x in sys.argv[1:4])
    proxy = Proxy(listen, target)
    threading.Thread(target=proxy.serve, daemon=True).start()
    print(json.dumps({"listening": listen, "target": target, "control": control}), flush=True)
    proxy.control(control)


if __name__ == "__main__":
    main()
