"""The Qt binding itself: what the app relies on and a release once broke."""

import subprocess
import sys
import textwrap


def test_thousands_of_object_signals_do_not_crash_the_binding():
    # PySide6 6.12.0 lost a reference per queued Signal(object) emission and crashed
    # the process after a few thousand: a long ingest sends that many progress signals.
    code = textwrap.dedent("""
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication, QObject, Signal
        app = QCoreApplication([])
        class Source(QObject):
            fired = Signal(object)
        source, got = Source(), []
        source.fired.connect(lambda value: got.append(value))
        for i in range(20_000):
            source.fired.emit(str(i))
        print(len(got))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "20000"
