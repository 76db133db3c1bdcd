"""Rig calibration: display-to-camera latency, region of interest, exposure drift, dark frame.
Results are one JSON (``mcnn.data.recording.CalibrationResult``) read by the recorder and loader.
Layers: apps -> calibration -> acquire -> mcnn; nothing below imports this package."""
