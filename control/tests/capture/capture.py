#!/usr/bin/env python3
"""Captures real frp 0.65.0 control-protocol frames for control's golden tests.

Part A runs the real frpc against a fake frps (this script) and records every frame frpc sends:
Login, Ping, NewProxy (several types), NewWorkConn, NewVisitorConn, CloseProxy.
Part B runs the real frps against a fake frpc (this script) and records every frame frps sends:
LoginResp (ok and error), ReqWorkConn, NewProxyResp (ok and error), Pong (ok and error),
StartWorkConn (ok and error), NewVisitorConnResp, UDPPacket.

Plain TCP, tcpMux off, TLS off; the control conn is decrypted with AES-128-CFB after LoginResp.
Output: one line per frame, `name hex`, on stdout. Usage: capture.py <frp-bin-dir>.
Everything listens on 127.0.0.1 with OS-chosen ports; every child process is killed at exit.
"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import warnings

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

warnings.simplefilter("ignore")

TOKEN = "abc"
BIN = sys.argv[1] if len(sys.argv) > 1 else "/work/main/.cache/frp-0.65.0"
OUT = []
PROCS = []


def record(name, raw):
    OUT.append((name, raw.hex()))


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def key():
    return hashlib.pbkdf2_hmac("sha1", TOKEN.encode(), b"frp", 64, 16)


def auth_key(ts):
    return hashlib.md5((TOKEN + str(ts)).encode()).hexdigest()


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(15)
        self.enc = None
        self.dec = None
        self.crypto = False

    def _raw_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("closed")
            buf += chunk
        return buf

    def exact(self, n):
        if not self.crypto:
            return self._raw_exact(n)
        if self.dec is None:
            iv = self._raw_exact(16)
            self.dec = Cipher(algorithms.AES(key()), modes.CFB(iv)).decryptor()
        return self.dec.update(self._raw_exact(n))

    def read_frame(self):
        head = self.exact(9)
        n = int.from_bytes(head[1:], "big")
        return head + self.exact(n)

    def send(self, raw):
        if self.crypto:
            if self.enc is None:
                iv = os.urandom(16)
                self.enc = Cipher(algorithms.AES(key()), modes.CFB(iv)).encryptor()
                self.sock.sendall(iv)
            raw = self.enc.update(raw)
        self.sock.sendall(raw)


def frame(t, obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return t.encode() + len(body).to_bytes(8, "big") + body


def spawn(args, conf_text, suffix=".toml"):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(conf_text)
    f.close()
    p = subprocess.Popen(args + ["-c", f.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    return p


def part_a():
    """Real frpc -> fake frps."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(20)
    port = srv.getsockname()[1]
    health = socket.socket()
    health.bind(("127.0.0.1", 0))
    health.listen(16)
    health_port = health.getsockname()[1]
    visitor_port = free_port()
    conf = f"""
serverAddr = "127.0.0.1"
serverPort = {port}
user = "u1"
loginFailExit = true
metadatas.k1 = "v1"
auth.token = "{TOKEN}"
auth.additionalScopes = ["HeartBeats", "NewWorkConns"]
transport.tcpMux = false
transport.tls.enable = false
transport.poolCount = 1

[[proxies]]
name = "t1"
type = "tcp"
localIP = "127.0.0.1"
localPort = {health_port}
remotePort = 6000
transport.useEncryption = true
transport.useCompression = true
transport.bandwidthLimit = "1MB"
transport.bandwidthLimitMode = "server"
metadatas.m1 = "a<b>&c"
annotations.an = "x"
healthCheck.type = "tcp"
healthCheck.timeoutSeconds = 1
healthCheck.maxFailed = 1
healthCheck.intervalSeconds = 1

[[proxies]]
name = "h1"
type = "http"
localPort = 80
customDomains = ["a.example.com", "b.example.com"]
subdomain = "sub"
locations = ["/", "/api"]
httpUser = "user"
httpPassword = "pwd"
hostHeaderRewrite = "internal"
requestHeaders.set.x-from-where = "frp"
responseHeaders.set.foo = "bar"
routeByHTTPUser = "user"
loadBalancer.group = "g1"
loadBalancer.groupKey = "gk"

[[proxies]]
name = "s1"
type = "stcp"
localPort = 22
secretKey = "sk1"
allowUsers = ["*"]

[[proxies]]
name = "m1"
type = "tcpmux"
multiplexer = "httpconnect"
customDomains = ["mux.example.com"]
localPort = 22

[[visitors]]
name = "v1"
type = "stcp"
serverName = "s1"
secretKey = "sk1"
bindAddr = "127.0.0.1"
bindPort = {visitor_port}
transport.useEncryption = true
"""
    spawn([f"{BIN}/frpc"], conf)
    ctl = Conn(srv.accept()[0])
    login = ctl.read_frame()
    record("login", login)
    run_id = "0123456789abcdef"
    ctl.send(frame("1", {"version": "0.65.0", "run_id": run_id}))
    ctl.crypto = True
    ctl.send(frame("r", {}))
    seen = {}
    work = None
    deadline = time.time() + 20
    health_closed = False
    visitor_done = False
    while time.time() < deadline:
        if work is None or not visitor_done:
            srv.settimeout(0.05)
            try:
                c = Conn(srv.accept()[0])
                first = c.read_frame()
                if first[0:1] == b"w":
                    record("new_work_conn", first)
                    work = c
                elif first[0:1] == b"v":
                    record("new_visitor_conn", first)
                    visitor_done = True
            except socket.timeout:
                pass
        ctl.sock.settimeout(0.2)
        try:
            f = ctl.read_frame()
        except socket.timeout:
            f = None
        ctl.sock.settimeout(15)
        if f is not None:
            t = f[0:1]
            body = json.loads(f[9:])
            if t == b"h" and "ping" not in seen:
                seen["ping"] = True
                record("ping", f)
                ctl.send(frame("4", {}))
            elif t == b"p":
                name = body["proxy_name"]
                if ("np:" + name) not in seen:
                    seen["np:" + name] = True
                    record("new_proxy_" + body["proxy_type"], f)
                ctl.send(frame("2", {"proxy_name": name, "remote_addr": ":6000"}))
            elif t == b"c":
                record("close_proxy", f)
                seen["close"] = True
        if "np:u1.t1" in seen and not health_closed:
            health.close()
            health_closed = True
        if not visitor_done and "np:u1.s1" in seen and "visitor_poked" not in seen:
            seen["visitor_poked"] = True
            time.sleep(0.5)

            def poke():
                try:
                    s = socket.create_connection(("127.0.0.1", visitor_port), timeout=5)
                    time.sleep(3)
                    s.close()
                except OSError:
                    pass

            threading.Thread(target=poke, daemon=True).start()
        if work is not None and visitor_done and "close" in seen:
            break
    srv.close()


def part_b(login_raw):
    """Fake frpc -> real frps."""
    bind = free_port()
    conf = f"""
bindAddr = "127.0.0.1"
bindPort = {bind}
auth.token = "{TOKEN}"
auth.additionalScopes = ["HeartBeats", "NewWorkConns"]
transport.tcpMux = false
"""
    spawn([f"{BIN}/frps"], conf)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", bind), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)

    # Bad token first.
    bad = Conn(socket.create_connection(("127.0.0.1", bind)))
    body = json.loads(login_raw[9:])
    body["privilege_key"] = "00" * 16
    bad.send(frame("o", body))
    record("login_resp_bad_token", bad.read_frame())
    bad.sock.close()

    ctl = Conn(socket.create_connection(("127.0.0.1", bind)))
    ctl.send(login_raw)
    resp = ctl.read_frame()
    record("login_resp_ok", resp)
    run_id = json.loads(resp[9:])["run_id"]
    ctl.crypto = True
    record("req_work_conn", ctl.read_frame())

    remote = free_port()
    ctl.send(frame("p", {"proxy_name": "u1.t1", "proxy_type": "tcp", "remote_port": remote}))
    record("new_proxy_resp_ok", ctl.read_frame())
    ctl.send(frame("p", {"proxy_name": "u1.t1", "proxy_type": "tcp", "remote_port": remote}))
    record("new_proxy_resp_exists", ctl.read_frame())
    uport = free_port(socket.SOCK_DGRAM)
    ctl.send(frame("p", {"proxy_name": "u1.u1", "proxy_type": "udp", "remote_port": uport}))
    record("new_proxy_resp_udp", ctl.read_frame())

    ts = int(time.time())
    ctl.send(frame("h", {"privilege_key": auth_key(ts), "timestamp": ts}))
    record("pong_ok", ctl.read_frame())
    ctl.send(frame("h", {"privilege_key": "bad", "timestamp": ts}))
    record("pong_bad", ctl.read_frame())

    # Bad work conn key.
    wbad = Conn(socket.create_connection(("127.0.0.1", bind)))
    wbad.send(frame("w", {"run_id": run_id, "privilege_key": "bad", "timestamp": ts}))
    record("start_work_conn_bad", wbad.read_frame())
    wbad.sock.close()

    # Visitor for an unknown proxy.
    v = Conn(socket.create_connection(("127.0.0.1", bind)))
    v.send(frame("v", {"run_id": run_id, "proxy_name": "u1.nope", "sign_key": "x", "timestamp": ts}))
    record("new_visitor_conn_resp_err", v.read_frame())
    v.sock.close()

    # tcp user connection -> StartWorkConn on the pooled work conn.
    w = Conn(socket.create_connection(("127.0.0.1", bind)))
    w.send(frame("w", {"run_id": run_id, "privilege_key": auth_key(ts), "timestamp": ts}))
    time.sleep(0.3)
    user = socket.create_connection(("127.0.0.1", remote))
    record("start_work_conn_tcp", w.read_frame())
    user.close()
    w.sock.close()

    # udp: frps asks for a work conn, sends StartWorkConn then UDPPacket frames on it.
    ctl.read_frame()  # replacement ReqWorkConn
    w2 = Conn(socket.create_connection(("127.0.0.1", bind)))
    w2.send(frame("w", {"run_id": run_id, "privilege_key": auth_key(ts), "timestamp": ts}))
    record("start_work_conn_udp", w2.read_frame())
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    for _ in range(20):
        u.sendto(b"hello<udp>", ("127.0.0.1", uport))
        w2.sock.settimeout(0.3)
        try:
            record("udp_packet", w2.read_frame())
            break
        except socket.timeout:
            continue
    ctl.sock.close()


def main():
    try:
        part_a()
        login = next(bytes.fromhex(h) for n, h in OUT if n == "login")
        part_b(login)
    finally:
        for p in PROCS:
            p.kill()
            p.wait()
    for n, h in OUT:
        print(n, h)


if __name__ == "__main__":
    main()
