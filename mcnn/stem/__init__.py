"""STEM on real microscope frames: detector calibration (gain, offset, read noise), normalisation to
the simulator's units and back, and self-supervised adaptation of a simulator-trained model."""
