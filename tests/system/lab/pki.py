"""Certificates for the lab, made with strongSwan's `pki`: a root CA, an
intermediate CA under it, one server certificate (GATEWAY_ID) and one per
client identity (cN@lab.test), all RSA (4096 bits by default). With the
intermediate sent beside the end-entity certificate, an IKE_AUTH carries
two RSA-4096 certificates and a 512-byte signature: about 3.5 kB, more
than a 1500-byte MTU, as Windows machine-certificate logins are.

Pki(dir).make(clients) generates once per directory (keys are reused when
present, so a test session pays for key generation once);
server_opts()/client_opts() give the lab's per-node options (swanctl
auth + the files each charon loads)."""
import os

from .netns import run
from .strongswan import GATEWAY_ID

PKI = "/usr/bin/pki"


class Pki:
    def __init__(self, directory, bits=4096):
        self.dir, self.bits = directory, bits
        os.makedirs(directory, exist_ok=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        p = self.path(name + ".key")
        if not os.path.exists(p):
            key = run([PKI, "--gen", "--type", "rsa", "--size", str(self.bits),
                       "--outform", "pem"], timeout=120).stdout
            with open(p + ".tmp", "w") as f:
                f.write(key)
            os.rename(p + ".tmp", p)
        return p

    def _issue(self, name, dn, issuer, san=None, ca=False):
        """Issue name.pem for name.key, signed by issuer (name of a CA made
        here)."""
        out = self.path(name + ".pem")
        if os.path.exists(out):
            return out
        pub = run([PKI, "--pub", "--in", self._key(name), "--type", "rsa",
                   "--outform", "pem"], timeout=30).stdout
        cmd = [PKI, "--issue", "--cacert", self.path(issuer + ".pem"),
               "--cakey", self.path(issuer + ".key"), "--type", "pub",
               "--dn", dn, "--lifetime", "30", "--outform", "pem"]
        cmd += ["--ca"] if ca else ["--san", san]
        pem = run(cmd, input=pub, timeout=30).stdout
        with open(out, "w") as f:
            f.write(pem)
        return out

    def make(self, clients):
        root = self.path("root.pem")
        if not os.path.exists(root):
            pem = run([PKI, "--self", "--ca", "--in", self._key("root"), "--type", "rsa",
                       "--dn", "C=XX, O=ikelb lab, CN=ikelb lab root CA",
                       "--lifetime", "30", "--outform", "pem"], timeout=30).stdout
            with open(root, "w") as f:
                f.write(pem)
        self._issue("inter", "C=XX, O=ikelb lab, CN=ikelb lab intermediate CA", "root", ca=True)
        self._issue("server", "C=XX, O=ikelb lab, CN=%s" % GATEWAY_ID, "inter", san=GATEWAY_ID)
        for i in range(1, clients + 1):
            ident = client_id(i)
            self._issue("c%d" % i, "C=XX, O=ikelb lab, CN=%s" % ident, "inter", san=ident)
        return self

    def _files(self, name):
        return {"x509ca/root.pem": self.path("root.pem"),
                "x509ca/inter.pem": self.path("inter.pem"),
                "x509/%s.pem" % name: self.path(name + ".pem"),
                "private/%s.key" % name: self.path(name + ".key")}

    def server_opts(self, conn=None):
        """Lab server_opts: certificate auth on both sides."""
        c = {"local": {"auth": "pubkey", "id": GATEWAY_ID, "certs": "server.pem"},
             "remote": {"auth": "pubkey", "cacerts": "root.pem"}}
        c.update(conn or {})
        return {"conn": c, "files": self._files("server")}

    def client_opts(self, conn=None):
        """Lab client_opts (a callable of the client's index)."""
        def opts(i):
            c = {"local": {"auth": "pubkey", "id": client_id(i), "certs": "c%d.pem" % i},
                 "remote": {"auth": "pubkey", "id": GATEWAY_ID, "cacerts": "root.pem"}}
            c.update(conn or {})
            return {"conn": c, "files": self._files("c%d" % i)}
        return opts


def client_id(i):
    return "c%d@lab.test" % i
