"""Training data: the dataset protocol and its sources (simulated, image folders, recorded pairs)."""

from mcnn.data.protocol import PairDataset

__all__ = ["PairDataset"]
