"""Rig calibration: display-to-camera latency, region of interest, exposure drift, dark frame.
Results are one JSON (``calibration.model.CalibrationResult``) read by the recorder and loader."""
