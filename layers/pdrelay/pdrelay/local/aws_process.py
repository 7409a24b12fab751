"""The local stack's AWS emulator (moto in server mode) in a process of its own.

In the stack's own process moto and the handlers would share one interpreter lock, so one core:
apart, each has a core. :class:`AwsEmulator` starts ``python -m pdrelay.local.aws_process HOST
PORT [NAME]``; the child binds (port 0: any free one), prints ``ready PORT`` on stdout, and serves
until its stdin closes, which it does when the stack stops or its process dies, so no emulator
outlives its stack. Its state lives in memory: it is gone when it stops, as the banner says.
Each child serves every service moto has; which ones it holds state for is up to the clients
that call it (the stack gives SQS one of its own: :class:`~pdrelay.local.stack.LocalStack`).
NAME only labels the process for ``ps`` and the benchmark.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import IO, Any


class AwsEmulator:
    """Start with :meth:`start` (returns once it answers), stop with :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, python: str = sys.executable, name: str = "") -> None:
        self.host = host
        self.port = port
        self.python = python
        self.name = name  # on its command line: what it is for
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 60.0) -> AwsEmulator:
        return self.launch().wait_ready(timeout)

    def launch(self) -> AwsEmulator:
        """Start the child and return at once; :meth:`wait_ready` waits for it (emulators launched
        one after the other load moto side by side)."""
        argv = [self.python, "-m", "pdrelay.local.aws_process", self.host, str(self.port)]
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            [*argv, self.name] if self.name else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> AwsEmulator:
        """Return once the child answers (it printed its port); stop it and raise if it does not."""
        assert self._process is not None and self._process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        words = line[0].split() if line else []
        if len(words) != 2 or words[0] != "ready":
            self.stop()
            raise OSError(f"the AWS emulator (moto) did not start: {' '.join(words) or 'no answer'}")
        self.port = int(words[1])
        return self

    def _readline(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout.readline()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the child's cue to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def moto_app() -> Any:
    """moto's WSGI application (every service, routed by the request's host, signature or body),
    with each host's backend looked up once: moto looks it up afresh on every request, listing its
    own package's folders on disk and trying every service's URL patterns, under a lock."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:  # called under self.lock
            try:
                return self._backends[host]
            except KeyError:
                found = self._backends[host] = super().get_backend_for_host(host)
                return found

    return Dispatcher()


def serve(host: str, port: int, stdin: IO[str], stdout: IO[str]) -> None:
    """The child: moto's application behind cheroot until ``stdin`` closes.

    Not werkzeug's development server (what ``moto_server`` runs): it answers HTTP/1.0-style,
    closing every connection, so each AWS call of the stack paid a new connection and a new
    thread. Cheroot keeps botocore's connections open (HTTP/1.1) and answers on a pool of threads,
    enough of them that long polls (``ReceiveMessage`` with a wait) do not hold up the other calls.
    (Waitress does too, at about a third more CPU per call here: its event loop wakes for every
    request before a worker takes it.)
    """
    from cheroot.wsgi import Server

    server = Server((host, port), moto_app(), numthreads=THREADS, server_name="moto")
    server.prepare()  # binds: port 0 becomes a free one
    thread = threading.Thread(target=server.serve, name="moto", daemon=True)
    thread.start()
    print(f"ready {server.bind_addr[1]}", file=stdout, flush=True)
    stdin.read()  # returns at end of file: the stack stopped, or died
    server.stop()


THREADS = 16


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.stdin, sys.stdout)
