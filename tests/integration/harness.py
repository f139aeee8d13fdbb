"""Shared plumbing for integration tests: real certificates, the real
transgate binary, the recording stub vendor and (optionally) Apertium APY,
all on loopback.  Python standard library only."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get("TG_SOURCE_DIR", os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..")))
TRANSGATE = os.environ.get("TG_TRANSGATE", "")
STUB_VENDOR = os.environ.get("TG_STUB_VENDOR", "")
CERTS_TOOL = os.path.join(SOURCE_DIR, "certs", "tg-certs")


def stop_process(proc, log):
    """SIGTERM, then SIGKILL after 5 s; closes the process's log file."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_disk(path):
    """Write zeros to path until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def _listen_inodes(port):
    """Socket inodes listening on TCP port `port` (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and \
                    int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def listeners_of(pid, port):
    """(ours, others): how many sockets listening on `port` process `pid`
    holds, and how many other processes hold.  A successful connection
    proves neither: it may reach another test's server on a port that
    free_port handed out twice."""
    want = _listen_inodes(port)
    ours = 0
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        fds = []
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in want:
            ours += 1
    return ours, len(want) - ours


def wait_port(port, proc=None, timeout=15.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %s:%d" % (host, port))


class Certs:
    """A development CA with server, vendor and client certificates."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pki")
        subprocess.run(["bash", CERTS_TOOL, "dev", self.dir], check=True,
                       stdout=subprocess.DEVNULL)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.server_cert = os.path.join(self.dir, "server.pem")
        self.server_key = os.path.join(self.dir, "server.key")
        self.vendor_cert = os.path.join(self.dir, "vendor.pem")
        self.vendor_key = os.path.join(self.dir, "vendor.key")


class RawVendor:
    """A TCP listener on 127.0.0.1 standing in for a vendor below TLS: each
    accepted connection goes to handle(conn) (timeout 5 s; OSError
    ignored) and is then closed.  Counts the connections it accepted."""

    def __init__(self, handle):
        self.handle = handle
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with c:
                c.settimeout(5)
                try:
                    self.handle(c)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        self.thread.join(5)


def read_tls_record(conn):
    """The first TLS record conn sends (a ClientHello, from a client), or
    what arrived of it before the peer closed."""
    data = b""
    while len(data) < 5 or len(data) < 5 + struct.unpack(">H", data[3:5])[0]:
        d = conn.recv(65536)
        if not d:
            break
        data += d
    return data


class StubVendor:
    """The recording stub vendor (tests/stub/stub_vendor.c)."""

    def __init__(self, workdir, certs, api_key=None, name="stub"):
        self.record = os.path.join(workdir, name + "-record.jsonl")
        port_file = os.path.join(workdir, name + ".port")
        args = [STUB_VENDOR, "--listen", "127.0.0.1:0", "--cert", certs.vendor_cert,
                "--key", certs.vendor_key, "--record", self.record,
                "--port-file", port_file]
        if api_key:
            args += ["--api-key", api_key]
        self.log = open(os.path.join(workdir, name + ".log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        port = ""
        while not port:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read().strip()
            if port:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("stub vendor did not start")
            time.sleep(0.02)
        self.port = int(port)

    def requests(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        stop_process(self.proc, self.log)


class Apertium:
    """Apertium APY on loopback over TLS with the vendor certificate."""

    def __init__(self, workdir, certs):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "apy.log"), "wb")
        env = dict(os.environ, LC_ALL="C.UTF-8")
        self.proc = subprocess.Popen(
            ["apertium-apy", "-p", str(self.port), "-c", certs.vendor_cert,
             "-k", certs.vendor_key, "/usr/share/apertium/modes"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.port, self.proc, timeout=60)

    def stop(self):
        stop_process(self.proc, self.log)


class Gateway:
    """The real transgate binary with a generated config."""

    def __init__(self, workdir, certs, upstreams, clients, limits=None,
                 workers=2, listeners=None, log_level="debug"):
        self.workdir = workdir
        self.certs = certs
        self.binary = TRANSGATE
        self.port = free_port()
        self.keys = {}
        keydir = os.path.join(workdir, "keys")
        os.makedirs(keydir, mode=0o700, exist_ok=True)
        cfg_clients = []
        for c in clients:
            c = dict(c)
            # Certificate-only clients get no key unless one is asked for.
            if "cert_cn" not in c:
                c.setdefault("api_key_hashes", os.path.join(keydir, c["name"] + ".hashes"))
            cfg_clients.append(c)
        self.audit_path = os.path.join(workdir, "audit.jsonl")
        self.audit_key = os.path.join(workdir, "audit.key")
        if not os.path.exists(self.audit_key):
            subprocess.run([TRANSGATE, "audit", "keygen", self.audit_key], check=True,
                           capture_output=True)
        self.config = {
            "workers": workers,
            "log": {"level": log_level},
            "limits": limits or {},
            "audit": {"path": self.audit_path, "key_file": self.audit_key},
            "listeners": listeners or [{
                "address": "127.0.0.1:%d" % self.port,
                "certificate": certs.server_cert,
                "private_key": certs.server_key,
            }],
            "upstreams": upstreams,
            "clients": cfg_clients,
        }
        self.config_path = os.path.join(workdir, "transgate.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        for c in cfg_clients:
            if "api_key_hashes" not in c:
                continue
            out = subprocess.run([TRANSGATE, "key", "new", c["name"], "-c", self.config_path],
                                 check=True, capture_output=True, text=True)
            self.keys[c["name"]] = out.stdout.strip()
        self.stderr_path = os.path.join(workdir, "transgate.stderr")
        self.proc = None

    def start(self):
        # free_port's port may be taken again before the gateway binds it
        # (tests run in parallel): the gateway then refuses to start, or,
        # when two start at the same instant, both listen (SO_REUSEPORT).
        # Listening is checked in /proc on this process and no other, and
        # with the default listener a new port is tried (three attempts).
        own_port = [l["address"] for l in self.config["listeners"]] == \
            ["127.0.0.1:%d" % self.port]
        for attempt in range(3):
            self.stderr = open(self.stderr_path, "ab")
            start_at = self.stderr.tell()
            self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config_path],
                                         stdout=self.stderr, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 15
            ours = others = 0
            while self.proc.poll() is None and time.monotonic() < deadline:
                ours, others = listeners_of(self.proc.pid, self.port)
                if ours > 0:
                    break
                time.sleep(0.02)
            if self.proc.poll() is None and ours > 0 and others == 0:
                break
            shared = self.proc.poll() is None and ours > 0
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(10)
            self.stderr.close()
            with open(self.stderr_path, "rb") as f:
                f.seek(start_at)
                said = f.read().decode("utf-8", "replace")
            lost = shared or "address already in use" in said
            if not own_port or attempt == 2 or not lost:
                raise RuntimeError("transgate did not start listening on port %d%s:\n%s" % (
                    self.port, " alone" if shared else "", said))
            self.port = free_port()
            self.config["listeners"][0]["address"] = "127.0.0.1:%d" % self.port
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=2)
        wait_port(self.port, self.proc)
        # The admin socket is opened after the listeners: wait for it too,
        # so a test's first admin request does not race the start-up.
        sock = self.config.get("admin", {}).get("socket")
        deadline = time.monotonic() + 15
        while sock and not os.path.exists(sock) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("transgate exited during start-up")
            time.sleep(0.02)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def audit_records(self):
        if not os.path.exists(self.audit_path):
            return []
        with open(self.audit_path, encoding="ascii") as f:
            return [json.loads(line) for line in f if line.strip()]

    def diagnostics(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        return ctx

    def tls_socket(self, timeout=10):
        """A TLS connection to the gateway for raw HTTP bytes (use with
        `with`); timeout applies to every send and receive."""
        raw = socket.create_connection(("127.0.0.1", self.port))
        try:
            s = self.ssl_context().wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        s.settimeout(timeout)
        return s

    def connection(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ssl_context())

    def request(self, method, path, body=None, headers=None, client=None,
                conn=None, timeout=30):
        """Send one request; returns (status, headers dict, body bytes)."""
        hdrs = dict(headers or {})
        if client is not None:
            hdrs["Authorization"] = "DeepL-Auth-Key " + self.keys[client]
        own = conn is None
        if own:
            conn = self.connection(timeout)
        try:
            if isinstance(body, str):
                body = body.encode("utf-8")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            if own:
                conn.close()


def admin_get(sock_path, url, timeout=5):
    """GET url on the admin plane's UNIX socket; (status, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(("GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
                   % url).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class Workdir:
    def __init__(self, prefix="tg-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o700)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)
