"""mcnn: multi-scale CNNs for image-to-image inverse problems.

Importing this package stays light (torch, numpy, pydantic only): camera, screen, Qt and file-format
libraries are imported where they are used.
"""

__version__ = "0.1.0"
