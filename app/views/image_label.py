"""`ImageLabel`: shows a PIL image or an HxWx3 uint8 array, scaled up without smoothing (64 px images stay crisp)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy


def to_qimage(image) -> QImage:
    """PIL image or uint8 array (H, W, 3) -> QImage that owns its pixels."""
    import numpy as np

    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {array.dtype} {array.shape}")
    height, width, _ = array.shape
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ImageLabel(QLabel):
    def __init__(self, placeholder: str = "", min_side: int = 160, parent=None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._placeholder = placeholder
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("QLabel { background: #202124; color: #9aa0a6; border: 1px solid #3c4043; }")
        self.setWordWrap(True)
        self.clear_image()

    def set_image(self, image) -> None:
        self._pixmap = QPixmap.fromImage(to_qimage(image))
        self._rescale()

    def clear_image(self, text: str | None = None) -> None:
        self._pixmap = None
        self.setPixmap(QPixmap())
        self.setText(self._placeholder if text is None else text)

    def has_image(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        side = max(16, min(self.width(), self.height()) - 4)
        self.setPixmap(self._pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation))
