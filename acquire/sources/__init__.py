"""Frame sources behind one protocol (``acquire.sources.base.Source``); import the concrete ones
from their modules (``camera``, ``screen``, ``file``, ``sim``) so that cv2/mss load only when used."""

from acquire.sources.base import Source, SourceError, SourceExhausted, StreamingSource

__all__ = ["Source", "SourceError", "SourceExhausted", "StreamingSource"]
