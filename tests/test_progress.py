"""The one progress-bar policy: automatic bars only on a terminal and only after DELAY_S; --progress forces one."""

import io
import sys

from seqspeech import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_automatic_bar_needs_a_terminal_and_waits(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.progress_bar(10, desc="x", unit="it").disable
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress.progress_bar(10, desc="x", unit="it")
    assert not bar.disable and bar.delay == progress.DELAY_S
    bar.update(10)
    bar.close()
    assert sys.stderr.getvalue() == ""  # finished before the delay: nothing drawn


def test_forced_and_refused(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.progress_bar(4, desc="transcribe", unit="file", enabled=True)
    bar.update(4)
    bar.close()
    assert "transcribe" in sys.stderr.getvalue() and "4/4" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress.progress_bar(4, desc="x", unit="it", enabled=False).disable
