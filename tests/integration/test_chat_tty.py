"""edgeq chat on a real terminal (a pseudo-terminal): Ctrl-C stops a reply, not the program;
the conversation goes on after it, and Ctrl-D at the prompt leaves with status 0."""
import os
import pty
import re
import select
import signal
import time

from serve_helpers import find_gemma


class Terminal:
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal is its stdin, stdout and stderr
            os.execv(argv[0], argv)
        self.text = ""

    def read_until(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self.text)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout} s; the terminal shows:\n{self.text[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the program ended while waiting for {pattern!r}:\n{self.text[-2000:]}")
                self.text += chunk.decode("utf-8", "replace")

    def send(self, data):
        os.write(self.fd, data.encode())

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            try:  # drain the terminal so the child never blocks on it
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.text += os.read(self.fd, 4096).decode("utf-8", "replace")
            except OSError:
                time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the program did not end within {timeout} s:\n{self.text[-2000:]}")


def test_ctrl_c_stops_a_reply_not_the_program(edgeq_bin):
    model = find_gemma()  # skips, visibly, when the model is not available
    term = Terminal([str(edgeq_bin), "chat", str(model), "--temp", "0", "-t", "2", "-c", "2048"])
    try:
        term.read_until(r"> $", 120)
        for turn, question in enumerate([
                "Write a very long story about a dragon who learns to sing. Make it two thousand words.",
                "Now tell it again, from the dragon's point of view, twice as long."]):
            term.send(question + "\n")
            # Wait for the reply to be under way, then press Ctrl-C.
            start = len(term.text)
            term.read_until(r"(?s)^.{%d}" % (start + len(question) + 200), 120)
            term.send("\x03")
            stats = term.read_until(r"(?s)^.{%d}.*\[(\d+) prompt tokens \((\d+) reused\), (\d+) generated" % start, 30)
            generated = int(stats.group(3))
            assert 0 < generated < 1000, f"reply {turn + 1} did not stop at Ctrl-C ({generated} tokens)"
            if turn == 1:  # the second turn reuses the first one's cache: the conversation went on
                assert int(stats.group(2)) > 0, f"the second turn reused nothing:\n{term.text[-2000:]}"
            term.read_until(r"(?s)^.{%d}.*> $" % stats.end(), 30)
        term.send("\x04")  # Ctrl-D at the prompt leaves
        status = term.wait(30)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"status {status}:\n{term.text[-2000:]}"
    finally:
        try:
            os.kill(term.pid, signal.SIGKILL)
            os.waitpid(term.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(term.fd)
