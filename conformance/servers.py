"""Starts the TAXII servers that the conformance suite, the interop tour and the benchmark drive.

* `Medallion`: the OASIS reference server (PyPI medallion 3.0.0, Flask, plain HTTP) with a memory
  backend whose config and DATA.json are written into a temporary directory.
* `Kizuna`: `kizuna serve` on a fresh data directory; its ready file says where it listens.

Both listen on 127.0.0.1 only. Readiness is awaited by polling with a bounded number of short tries.
Use them as context managers so the process is always stopped.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Medallion:
    """medallion 3.0.0 with one API root `api1` and three collections:

    collection     can_read + can_write (the one the suite writes to)
    ro_collection  can_read only
    wo_collection  can_write only
    """

    api_root_name = "api1"

    def __init__(self, workdir, user="admin", password=None, max_content_length=10 * 1024 * 1024,
                 max_page_size=100, session_timeout=30):
        self.workdir = workdir
        self.user = user
        self.password = password or uuid.uuid4().hex
        self.max_content_length = max_content_length
        self.max_page_size = max_page_size
        self.session_timeout = session_timeout
        self.collection = str(uuid.uuid4())
        self.ro_collection = str(uuid.uuid4())
        self.wo_collection = str(uuid.uuid4())
        self.port = None
        self.proc = None
        self.log_path = os.path.join(workdir, "medallion.log")
        self.verify = True  # plain HTTP: nothing to verify
        self.cert = None

    @property
    def discovery_url(self):
        return "http://127.0.0.1:%d/taxii2/" % self.port

    @property
    def api_root_url(self):
        return "http://127.0.0.1:%d/%s/" % (self.port, self.api_root_name)

    def _collection(self, cid, title, read, write):
        return {"id": cid, "title": title, "description": "written by Kizuna's conformance harness",
                "can_read": read, "can_write": write,
                "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}

    def write_config(self):
        data = {
            "/discovery": {
                "title": "medallion under test",
                "description": "medallion 3.0.0 started by Kizuna's conformance harness",
                "default": "/%s/" % self.api_root_name,
                "api_roots": ["/%s/" % self.api_root_name],
            },
            self.api_root_name: {
                "information": {
                    "title": "api1", "description": "the only API root",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": self.max_content_length,
                },
                "status": [],
                "collections": [
                    self._collection(self.collection, "read-write", True, True),
                    self._collection(self.ro_collection, "read-only", True, False),
                    self._collection(self.wo_collection, "write-only", False, True),
                ],
            },
        }
        data_path = os.path.join(self.workdir, "DATA.json")
        with open(data_path, "w") as f:
            json.dump(data, f, indent=1)
        cfg = {
            "backend": {"module_class": "MemoryBackend", "module": "medallion.backends.memory_backend",
                        "filename": data_path, "session_timeout": self.session_timeout},
            "users": {self.user: self.password},
            "taxii": {"max_page_size": self.max_page_size},
        }
        cfg_path = os.path.join(self.workdir, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        return cfg_path

    def start(self, tries=200, wait=0.05):
        cfg = self.write_config()
        self.port = free_port()
        exe = os.path.join(os.path.dirname(sys.executable), "medallion")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(self.port), cfg],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        for _ in range(tries):
            if self.proc.poll() is not None:
                raise RuntimeError("medallion exited with %s:\n%s" % (self.proc.returncode, _tail(self.log_path)))
            try:
                r = requests.get(self.discovery_url, auth=(self.user, self.password), timeout=2,
                                 headers={"Accept": "application/taxii+json;version=2.1"})
                if r.status_code == 200:
                    return self
            except requests.exceptions.ConnectionError:
                pass
            time.sleep(wait)
        self.stop()
        raise RuntimeError("medallion did not answer on port %d:\n%s" % (self.port, _tail(self.log_path)))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def suite_args(self):
        return ["--discovery", self.discovery_url, "--user", self.user, "--password", self.password,
                "--api-root", self.api_root_name, "--collection", self.collection,
                "--read-only-collection", self.ro_collection, "--write-only-collection", self.wo_collection]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def kizuna_binary(build=True):
    """Builds (cargo build --release -p kizuna-cli) and returns target/release/kizuna."""
    exe = os.path.join(ROOT, "target", "release", "kizuna")
    if build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "kizuna-cli"], cwd=ROOT, check=True)
    if not os.access(exe, os.X_OK):
        raise RuntimeError("%s is missing" % exe)
    return exe


class Kizuna:
    """`kizuna serve --data DIR --listen 127.0.0.1:0 --ready-file FILE` with the admin password in
    KIZUNA_ADMIN_PASSWORD. The ready file is JSON {url, discovery, api_root, collection, cert,
    fingerprint}; `url` may be the server's base URL or its discovery URL."""

    user = "admin"

    def __init__(self, workdir, binary, password=None, extra_args=(), config_toml=None):
        self.workdir = workdir
        self.config_toml = config_toml
        self.binary = binary
        self.password = password or uuid.uuid4().hex
        self.extra_args = list(extra_args)
        self.data_dir = os.path.join(workdir, "kizuna-data")
        self.ready_file = os.path.join(workdir, "ready.json")
        self.log_path = os.path.join(workdir, "kizuna.log")
        self.proc = None
        self.ready = None

    def start(self, tries=600, wait=0.1):
        os.makedirs(self.data_dir, exist_ok=True)
        env = dict(os.environ, KIZUNA_ADMIN_PASSWORD=self.password)
        extra = list(self.extra_args)
        if self.config_toml is not None:
            path = os.path.join(self.workdir, "kizuna.toml")
            with open(path, "w") as f:
                f.write(self.config_toml)
            extra += ["--config", path]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve", "--data", self.data_dir, "--listen", "127.0.0.1:0",
                                      "--ready-file", self.ready_file] + extra,
                                     stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        log.close()
        for _ in range(tries):
            if self.proc.poll() is not None:
                raise RuntimeError("kizuna exited with %s:\n%s" % (self.proc.returncode, _tail(self.log_path)))
            if os.path.exists(self.ready_file):
                try:
                    with open(self.ready_file) as f:
                        self.ready = json.load(f)
                    break
                except ValueError:
                    pass  # written but not complete yet
            time.sleep(wait)
        else:
            self.stop()
            raise RuntimeError("kizuna wrote no ready file in %.0f s:\n%s" % (tries * wait, _tail(self.log_path)))
        return self

    @property
    def discovery_url(self):
        url = self.ready.get("discovery") or self.ready["url"]
        if not url.rstrip("/").endswith("/taxii2"):
            url = url.rstrip("/") + "/taxii2/"
        return url if url.endswith("/") else url + "/"

    @property
    def collection(self):
        return self.ready["collection"]

    @property
    def api_root(self):
        return self.ready.get("api_root")

    @property
    def cert(self):
        return self.ready.get("cert")

    @property
    def verify(self):
        return self.cert or True

    def cli(self, *args, stdin=None):
        """Runs `kizuna <args> --data DIR` against the running hub's data directory."""
        return subprocess.run([self.binary] + list(args) + ["--data", self.data_dir], input=stdin, text=True,
                              capture_output=True, check=True, cwd=self.workdir).stdout

    def add_limited_account(self, name="conformance"):
        """Adds a read-only and a write-only collection and an account that can read and write the
        default collection, only read the first and only write the second; the suite then runs as
        that account, so that the can_read/can_write MUSTs of section 5 are tested too."""
        self.cli("collection", "add", "--title", "conformance read-only", "--alias", "conformance-ro")
        self.cli("collection", "add", "--title", "conformance write-only", "--alias", "conformance-wo")
        by_alias = {c.get("alias"): c["id"] for c in json.loads(self.cli("collection", "list", "--json"))}
        self.ro_collection, self.wo_collection = by_alias["conformance-ro"], by_alias["conformance-wo"]
        password = uuid.uuid4().hex
        self.cli("account", "add", name, "--password-stdin", "--read", self.collection, "--write", self.collection,
                 "--read", self.ro_collection, "--write", self.wo_collection, "--tlp-clearance", "red",
                 stdin=password + "\n")
        self.user, self.password = name, password

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def suite_args(self):
        a = ["--discovery", self.discovery_url, "--user", self.user, "--password", self.password,
             "--collection", self.collection]
        if getattr(self, "ro_collection", None):
            a += ["--read-only-collection", self.ro_collection, "--write-only-collection", self.wo_collection]
        if self.api_root:
            a += ["--api-root", self.api_root]
        if self.cert:
            a += ["--cacert", self.cert]
        return a

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
