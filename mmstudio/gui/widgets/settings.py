"""Settings: the library's profiles and device, its location, the thumbnail size."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mmstudio.encoders.profiles import PROFILES, parse_spec

DEVICES = ("auto", "cpu", "cuda", "mps")
PROFILE_HELP = {
    "starter": "offline starter pack: MiniLM text, EfficientNet pictures, sound statistics",
    "clip": "CLIP / SigLIP pictures, frames and text (a model you fetched)",
    "clap": "CLAP sound and text (a model you fetched)",
}


class SettingsDialog(QDialog):
    def __init__(self, profiles: list[str], device: str, library: str, thumb_size: int,
                 parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.library_change_requested = False
        chosen = dict(parse_spec(s) for s in profiles)
        form = QFormLayout()
        box = QWidget()
        rows = QVBoxLayout(box)
        rows.setContentsMargins(0, 0, 0, 0)
        self.profile_boxes: dict[str, tuple[QCheckBox, QLineEdit]] = {}
        for name in PROFILES:
            check = QCheckBox(name)
            check.setChecked(name in chosen)
            check.setToolTip(PROFILE_HELP.get(name, ""))
            model = QLineEdit(chosen.get(name) or "")
            model.setPlaceholderText("default model" if name != "starter" else "built in")
            model.setEnabled(name != "starter")
            line = QHBoxLayout()
            line.addWidget(check)
            line.addWidget(model, 1)
            rows.addLayout(line)
            self.profile_boxes[name] = (check, model)
        form.addRow("Profiles", box)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        if device not in DEVICES:
            self.device.addItem(device)
        self.device.setCurrentText(device)
        form.addRow("Device", self.device)
        location = QHBoxLayout()
        location.addWidget(QLabel(library), 1)
        change = QPushButton("Open another…")
        change.clicked.connect(self._change_library)
        location.addWidget(change)
        form.addRow("Library", location)
        self.thumb_size = QSpinBox(minimum=64, maximum=512, singleStep=32, suffix=" px")
        self.thumb_size.setValue(thumb_size)
        form.addRow("Thumbnail size", self.thumb_size)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("New profiles encode a folder the next time you add it "
                                "(only what is missing is encoded)."))
        layout.addWidget(buttons)

    def profiles(self) -> list[str]:
        specs = []
        for name, (check, model) in self.profile_boxes.items():
            if check.isChecked():
                specs.append(f"{name}:{model.text().strip()}" if model.text().strip() else name)
        return specs or ["starter"]

    def _change_library(self) -> None:
        self.library_change_requested = True
        self.reject()
