#!/usr/bin/env python3
"""Builds the seed corpus fuzz/corpus/<target>/ from real frp traffic and frp's configs.

Sources (all captured from the real frp 0.65.0 binaries or shipped with frp):
  control/tests/golden/frames.txt        one frame per line: `name hex`
  proxies/tests/vectors/control_c2s.bin  frpc's encrypted control stream after Login
                                         (token "abc"; decrypted here with AES-128-CFB)
  proxies/tests/vectors/*_c2s.bin        work-connection payload streams
  transports/tests/kcp_fec.rs            CAPTURED_GROUP: one FEC group (10 data + 3 parity)
  /work/shared/frp-0.65.0-conf/          frp's example configs (lines that would make the
                                         loader read files, `includes`/`tokenSource`, removed)
plus a few hand-written yamux, websocket, template and TLS record inputs. Input layouts are documented
on each target function in fuzzing/src/. Run from anywhere: `python3 fuzz/make_seeds.py`.
The output is deterministic; existing seed files are overwritten, others are kept.
"""
import hashlib
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF_DIR = os.environ.get("FRP_CONF_DIR", "/work/shared/frp-0.65.0-conf")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rec(tag, body=b"", length=None):
    """One record of fuzzing/src/records.rs: tag u8 | len u16 LE | body."""
    n = len(body) if length is None else length
    return bytes([tag]) + struct.pack("<H", n) + body


def golden():
    frames = {}
    with open(os.path.join(ROOT, "control/tests/golden/frames.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, hexdata = line.split()
                frames[name] = bytes.fromhex(hexdata)
    return frames


def split_frames(stream):
    out = []
    while len(stream) >= 9:
        n = struct.unpack(">q", stream[1:9])[0]
        if n < 0 or len(stream) < 9 + n:
            break
        out.append(stream[: 9 + n])
        stream = stream[9 + n:]
    return out


def captured_control_frames():
    """frpc's control messages after Login, decrypted (frp-protocol.md §4)."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
        try:
            from cryptography.hazmat.decrepit.ciphers.modes import CFB
        except ImportError:
            from cryptography.hazmat.primitives.ciphers.modes import CFB
    except ImportError:
        print("python3 cryptography missing: skipping the decrypted control stream")
        return []
    with open(os.path.join(ROOT, "proxies/tests/vectors/control_c2s.bin"), "rb") as f:
        raw = f.read()
    key = hashlib.pbkdf2_hmac("sha1", b"abc", b"frp", 64, 16)
    dec = Cipher(algorithms.AES(key), CFB(raw[:16])).decryptor()
    return split_frames(dec.update(raw[16:]) + dec.finalize())


def kcp_group():
    with open(os.path.join(ROOT, "transports/tests/kcp_fec.rs")) as f:
        src = f.read()
    body = src[src.index("CAPTURED_GROUP"):]
    body = body[: body.index("];")]
    return [bytes.fromhex(h) for h in re.findall(r'"([0-9a-f]+)"', body)]


def main():
    frames = golden()
    captured = captured_control_frames()
    c2s_types = set(b"opcwvh" + b"u")  # client → server message type bytes

    # codec: every golden frame alone, all of them in one stream, the captured stream.
    for name, fr in frames.items():
        write("codec", f"golden_{name}", fr)
    write("codec", "golden_all", b"".join(frames.values()))
    if captured:
        write("codec", "captured_control_c2s", b"".join(captured))

    # control_sequence: opts 0x08 = good key, run id "", pool_count 1.
    opts = bytes([0x08])
    for name, fr in frames.items():
        if fr[0] in c2s_types:
            write("control_sequence", f"golden_{name}", opts + rec(0, fr))
    if captured:
        write("control_sequence", "captured_control_c2s",
              opts + b"".join(rec(0, fr) for fr in captured))
    vec_dir = os.path.join(ROOT, "proxies/tests/vectors")
    hello = open(os.path.join(vec_dir, "enc_hello_c2s.bin"), "rb").read()
    plain = open(os.path.join(vec_dir, "random.plain"), "rb").read()[:512]
    # A tcp proxy on a port inside allowPorts (len 3 → PORT_LO), a work conn carrying a
    # captured encrypted payload, a user connection to the proxy, a ping, a close.
    write("control_sequence", "tcp_proxy_flow",
          opts + rec(3, b"\x01\x00", length=2) + rec(6, hello) + rec(7, plain)
          + rec(5, b"", length=0) + rec(4, b"", length=3))
    write("control_sequence", "side_first_frames",
          opts + rec(8, frames["new_work_conn"]) + rec(8, frames["new_visitor_conn"])
          + rec(8, frames["login"]))
    write("control_sequence", "generic_new_proxy",
          bytes([0x1a]) + rec(2, b'{"proxy_name":"x","proxy_type":"udp","remote_port":20101}')
          + rec(1, b'h{"privilege_key":"","timestamp":0}'))

    # conf_toml and conf_template: frp's example configs.
    for fname in sorted(os.listdir(CONF_DIR)):
        with open(os.path.join(CONF_DIR, fname), "rb") as f:
            text = f.read()
        lines = [l for l in text.split(b"\n")
                 if b"includes" not in l.lower() and b"tokensource" not in l.lower()
                 and b"token_source" not in l.lower()]
        cleaned = b"\n".join(lines)
        write("conf_toml", fname, cleaned)
        write("conf_template", fname, cleaned)
    write("conf_toml", "json_min.json",
          b'{"bindPort": 7000, "auth": {"token": "{{ .Envs.NAME }}"}}')
    write("conf_toml", "yaml_min.yaml",
          b"serverAddr: 127.0.0.1\nserverPort: 7000\nproxies:\n  - name: a\n    type: tcp\n"
          b"    localPort: 22\n    remotePort: 6000\n")
    write("conf_toml", "toml_range.toml",
          b'{{- range $_, $v := parseNumberRange "6000-6002" }}\n[[proxies]]\n'
          b'name = "tcp-{{ $v }}"\ntype = "tcp"\nlocalPort = {{ $v }}\nremotePort = {{ $v }}\n'
          b"{{- end }}\n")
    templates = {
        "envs": b'bindPort = {{ .Envs.FRP_PORT }}\nuser = "{{ .Envs.MISSING }}"\n',
        "range_pair": b'{{ range $p := parseNumberRangePair "1-3,5" "11-13,15" }}'
                      b"{{ $p.First }}={{ $p.Second }} {{ end }}",
        "control": b'{{ $x := 3 }}{{ if gt $x 2 }}big{{ else if eq $x 2 }}two{{ else }}small'
                   b'{{ end }}{{ with .Envs.NAME }}{{ . }}{{ end }}'
                   b'{{ range $i, $v := parseNumberRange "1-4" }}{{ if eq $i 2 }}{{ break }}'
                   b'{{ end }}{{ printf "%d:%v;" $i $v }}{{ end }}',
        "trim": b"a  {{- /* comment */ -}}  b {{ print 1 2 \"x\" | printf \"%q\" }}\n",
        "funcs": b'{{ len "abc" }} {{ index .Envs "NAME" }} {{ and 1 0 }} {{ or 0 "y" }} '
                 b'{{ not true }} {{ println `raw` }} {{ le 1 2 }} {{ ne "a" "b" }}',
    }
    for name, t in templates.items():
        write("conf_template", name, t)

    # yamux_frame: mode bit 0 = we are frps; the peer is frpc.
    syn = bytes.fromhex("000100010000000100" "5c0000")  # frpc's first frame (§6)
    login = frames["login"]
    data_hdr = struct.pack(">BBHII", 0, 0, 0, 1, len(login))
    ping = struct.pack(">BBHII", 0, 2, 1, 0, 7)
    fin = struct.pack(">BBHII", 0, 1, 4, 1, 0)
    go_away = struct.pack(">BBHII", 0, 3, 0, 0, 0)
    write("yamux_frame", "frpc_login", b"\x01" + syn + data_hdr + login + ping + fin)
    write("yamux_frame", "two_streams_goaway",
          b"\x03" + syn + struct.pack(">BBHII", 0, 1, 1, 3, 0)
          + struct.pack(">BBHII", 0, 0, 0, 3, 5) + b"hello"
          + struct.pack(">BBHII", 0, 1, 8, 3, 0) + go_away)
    write("yamux_frame", "client_side_ack",
          b"\x02" + struct.pack(">BBHII", 0, 1, 2, 1, 0x5c0000)
          + struct.pack(">BBHII", 0, 0, 0, 1, 3) + b"abc" + ping)

    # kcp_fec: the captured group, whole and with the first 3 data shards dropped (bit 7),
    # with clock advances, reads and a write of ours.
    group = kcp_group()
    whole = b"".join(rec(0, dg) for dg in group)
    write("kcp_fec", "captured_group", whole + rec(1, length=20) + rec(2, length=4096))
    lossy = b"".join(rec(0x80 if i < 3 else 0, dg) for i, dg in enumerate(group))
    write("kcp_fec", "captured_group_lossy",
          lossy + rec(1, length=30) + rec(2, length=65535) + rec(3, b"pong") + rec(1, length=500))
    write("kcp_fec", "raw_kcp_segments",
          b"".join(rec(0, dg[8:]) for dg in group[:10]) + rec(3, b"x" * 3000) + rec(1, length=40))

    # ws_frame.
    def masked(op, payload, mask=b"\x37\xfa\x21\x3d"):
        return bytes([op, 0x80 | len(payload)]) + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(payload))

    go_request = (b"GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1:17204\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Origin: http://127.0.0.1:17204\r\nSec-WebSocket-Version: 13\r\n\r\n")
    frpc_frames = (masked(0x01, login[:100]) + masked(0x89, b"p1") + masked(0x00, b"x")
                   + masked(0x02, b"") + masked(0x88, b"\x03\xe8"))
    write("ws_frame", "server_frames", b"\x00" + masked(0x02, login[:120]) + masked(0x89, b"hb")
          + masked(0x88, b"\x03\xe8"))
    write("ws_frame", "server_fragments",
          b"\x00" + bytes([0x01, 0x83]) + b"\x01\x02\x03\x04" + b"abc"
          + bytes([0x80, 0x81]) + b"\x01\x02\x03\x04" + b"d")
    write("ws_frame", "client_frames",
          b"\x01" + bytes([0x82, 4, 0, 0xff, ord("o"), ord("k")]) + bytes([0x89, 2]) + b"hb"
          + bytes([0x82, 126, 0, 200]) + bytes(200) + bytes([0x88, 2, 3, 0xe8]))
    write("ws_frame", "go_upgrade_then_frames", b"\x02" + go_request + frpc_frames)
    write("ws_frame", "upgrade_response",
          b"\x03HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" + bytes([0x82, 1, 0x17]))

    # sniff: opts bit 0 = tls_force, bits 1.. = read chunk size.
    client_hello = bytes.fromhex("160301020001000200")
    for name, data in {
        "frp_tls_head": b"\x02\x17" + client_hello,
        "tls_record": b"\x03" + client_hello,
        "websocket": b"\x02" + go_request[:40],
        "websocket_bytewise": b"\x02" + go_request[:12],
        "plain_login": b"\x08" + login[:30],
        "plain_forced": b"\x09" + login[:30],
        "yamux_syn": b"\x04" + syn,
        "almost_websocket": b"\x02GET /~!fr",
    }.items():
        write("sniff", name, data)

    # tls_records: opts = read size index; records: tag 0 sealed (kind, data), 1 sealed
    # application data, 2 KeyUpdate (bit 0: requested), 3 raw bytes.
    def sealed(kind, data=b""):
        return rec(0, bytes([kind]) + data)

    close_notify = sealed(21, b"\x01\x00")
    for name, data in {
        "data_then_close": b"\x03" + rec(1, b"hello") + rec(1, bytes(300)) + close_notify,
        "bytewise_reads": b"\x00" + rec(1, b"abc") + rec(1, b"") + close_notify,
        "padded_and_empty": b"\x02" + sealed(0, b"pad\x17" + bytes(40)) + sealed(23) + close_notify,
        "key_updates": b"\x04" + rec(1, b"one") + rec(2, b"\x01") + rec(1, b"two") + rec(2, b"\x00")
        + rec(1, b"three") + close_notify,
        "full_record": b"\x05" + rec(1, bytes(range(256)) * 64) + close_notify,
        "oversized_plaintext": b"\x06" + rec(1, b"x") + rec(1, b"y" * (1 << 14) + b"z") + close_notify,
        "user_canceled": b"\x03" + rec(1, b"a") + sealed(21, b"\x01\x5a") + rec(1, b"b") + close_notify,
        "fatal_alert": b"\x03" + rec(1, b"a") + sealed(21, b"\x02\x28") + rec(1, b"b"),
        "hand_sealed_key_update": b"\x03" + rec(1, b"a") + sealed(22, b"\x18\x00\x00\x01\x00")
        + rec(1, b"b"),
        "key_update_not_last": b"\x03" + sealed(22, b"\x18\x00\x00\x01\x00\x18\x00\x00\x01\x00"),
        "ticket_to_server": b"\x03" + sealed(22, b"\x04\x00\x00\x02ab") + close_notify,
        "empty_handshake": b"\x03" + sealed(22) + close_notify,
        "unknown_type": b"\x03" + sealed(24, b"hb") + close_notify,
        "raw_junk": b"\x03" + rec(1, b"ok") + rec(3, b"\x17\x03\x03\x00\x20" + bytes(32)),
        "truncated_header": b"\x03" + rec(1, b"ok") + rec(3, b"\x17\x03"),
        "no_close_notify": b"\x03" + rec(1, b"ok"),
    }.items():
        write("tls_records", name, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
