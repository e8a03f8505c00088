"""TLS stand-in for an SSTP server (tests/system/test_tcp_service.py).

server NAME CERT KEY PORT: accept TLS connections, answer each with one
line "NAME PEER-ADDRESS" and close. client HOST PORT COUNT: COUNT
connections, each line printed; a connection that fails prints "ERR ...".
Every socket operation has a timeout: nothing here can hang a test."""
import socket
import ssl
import sys


def serve(name, cert, key, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, peer = ls.accept()
        conn.settimeout(5)
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(("%s %s\n" % (name, peer[0])).encode())
        except (OSError, ssl.SSLError):
            conn.close()


def connect(host, port, count):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                with ctx.wrap_socket(s) as tls:
                    print(tls.recv(200).decode().strip(), flush=True)
        except (OSError, ssl.SSLError) as e:
            print("ERR %s" % e, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
