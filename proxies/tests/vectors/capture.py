#!/usr/bin/env python3
"""Captures work-connection byte vectors from the real frp 0.65.0 binaries.

Runs frps and frpc on 127.0.0.1 (OS-chosen free ports), with a logging TCP relay between
them, tcpMux=false and TLS off so every work connection is its own plain TCP connection.
Three tcp proxies in front of a local echo server: `enc` (useEncryption), `comp`
(useCompression), `both` (both), token "abc". For each proxy and each payload, a user
connects to the remote port, sends the payload, reads the echo back and closes.

Writes into the output directory, per proxy P and payload K:
  P_K_s2c.bin  bytes frps wrote on the work conn after its StartWorkConn frame
  P_K_c2s.bin  bytes frpc wrote on the work conn after its NewWorkConn frame
  K.plain      the payload (both directions carry exactly this)
  control_c2s.bin / control_s2c.bin  the control conn after Login / LoginResp (encrypted msgs)

Usage: capture.py <frp-bin-dir> <out-dir>
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

PAYLOADS = {
    "hello": b"A" * 100 + b"hello-frp",
    "text": b"".join(b"line %05d: the quick brown fox jumps over the lazy dog\n" % i for i in range(1500)),
    "random": random.Random(20240501).randbytes(3000),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listening(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def echo_server(sock):
    def handle(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(c,), daemon=True).start()


class Relay:
    """Accepts frpc connections, forwards to frps, records both directions per connection."""

    def __init__(self, listen, target):
        self.listen, self.target = listen, target
        self.conns = []  # [c2s bytes, s2c bytes, time of first s2c byte]
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                c, _ = self.listen.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            rec = [bytearray(), bytearray(), None]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self.pipe, args=(c, s, rec, 0), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, rec, 1), daemon=True).start()

    @staticmethod
    def pipe(src, dst, rec, idx):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if rec[2] is None and idx == 1:
                    rec[2] = time.monotonic()
                rec[idx].extend(d)
                dst.sendall(d)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def strip_frame(data, want_type):
    """Removes one frp message frame (type byte, 8-byte BE length, JSON) from the front."""
    assert data[0:1] == want_type, (data[:1], want_type)
    (n,) = struct.unpack(">q", data[1:9])
    return bytes(data[9 + n:])


def main():
    bindir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    procs = []
    try:
        echo = socket.socket()
        echo.bind(("127.0.0.1", 0))
        echo.listen(16)
        threading.Thread(target=echo_server, args=(echo,), daemon=True).start()
        frps_port = free_port()
        relay_sock = socket.socket()
        relay_sock.bind(("127.0.0.1", 0))
        relay_sock.listen(16)
        relay = Relay(relay_sock, ("127.0.0.1", frps_port))
        threading.Thread(target=relay.run, daemon=True).start()
        remote = {name: free_port() for name in ("enc", "comp", "both")}
        flags = {"enc": (True, False), "comp": (False, True), "both": (True, True)}

        with open(os.path.join(tmp, "frps.toml"), "w") as f:
            f.write(f'bindAddr = "127.0.0.1"\nbindPort = {frps_port}\nproxyBindAddr = "127.0.0.1"\n'
                    'auth.token = "abc"\ntransport.tcpMux = false\n')
        with open(os.path.join(tmp, "frpc.toml"), "w") as f:
            f.write(f'serverAddr = "127.0.0.1"\nserverPort = {relay_sock.getsockname()[1]}\n'
                    'auth.token = "abc"\ntransport.tcpMux = false\ntransport.tls.enable = false\n'
                    'transport.poolCount = 0\n')
            for name, (enc, comp) in flags.items():
                f.write(f'\n[[proxies]]\nname = "{name}"\ntype = "tcp"\nlocalIP = "127.0.0.1"\n'
                        f'localPort = {echo.getsockname()[1]}\nremotePort = {remote[name]}\n'
                        f'transport.useEncryption = {str(enc).lower()}\n'
                        f'transport.useCompression = {str(comp).lower()}\n')
        procs.append(subprocess.Popen([os.path.join(bindir, "frps"), "-c", os.path.join(tmp, "frps.toml")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(frps_port)
        procs.append(subprocess.Popen([os.path.join(bindir, "frpc"), "-c", os.path.join(tmp, "frpc.toml")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_listening(remote["both"])
        time.sleep(0.5)  # let the probe's work conn finish

        # frps keeps one spare work conn in its pool (server/control.go GetWorkConn asks for a
        # replacement whenever it takes one), so a user conn is served by an earlier work
        # conn. Match them by when frps first wrote on them (StartWorkConn).
        runs = []
        for name in flags:
            for key, payload in PAYLOADS.items():
                start = time.monotonic()
                u = socket.create_connection(("127.0.0.1", remote[name]), timeout=10)
                u.sendall(payload)
                got = bytearray()
                while len(got) < len(payload):
                    d = u.recv(65536)
                    if not d:
                        break
                    got.extend(d)
                assert bytes(got) == payload, (name, key, len(got))
                u.close()
                time.sleep(0.5)
                runs.append((start, name, key))
        with relay.lock:
            used = sorted((c for c in relay.conns if c[1]), key=lambda c: c[2])
        for start, name, key in runs:
            c2s, s2c, first = next(c for c in used if c[2] >= start)
            assert f'"proxy_name":"{name}"'.encode() in s2c[:200], (name, key)
            with open(os.path.join(out, f"{name}_{key}_c2s.bin"), "wb") as f:
                f.write(strip_frame(c2s, b"w"))
            with open(os.path.join(out, f"{name}_{key}_s2c.bin"), "wb") as f:
                f.write(strip_frame(s2c, b"s"))
        # The control conn (first frame Login 'o', answered by LoginResp '1'): everything after
        # those two frames is AES-CFB with the same key (frp-protocol.md §4).
        with relay.lock:
            ctl = next(c for c in relay.conns if c[0][:1] == b"o" and c[1][:1] == b"1")
        with open(os.path.join(out, "control_c2s.bin"), "wb") as f:
            f.write(strip_frame(ctl[0], b"o"))
        with open(os.path.join(out, "control_s2c.bin"), "wb") as f:
            f.write(strip_frame(ctl[1], b"1"))
        for key, payload in PAYLOADS.items():
            with open(os.path.join(out, f"{key}.plain"), "wb") as f:
                f.write(payload)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
