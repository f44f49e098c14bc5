"""RPM-Net companion: Robust Pixel-Level Matching Networks (Kim et al., WACV 2020), reproduced.

Heavy imports (torch, pandas) happen on first use, so `rpmnet --help` stays fast.
"""
__version__ = "0.1.0"

__all__ = ["RPMNet", "TABLE2", "architecture_table", "ModelConfig", "__version__"]


def __getattr__(name):
    if name == "RPMNet":
        from .model.rpmnet import RPMNet
        return RPMNet
    if name == "architecture_table":
        from .model.table1 import architecture_table
        return architecture_table
    if name == "TABLE2":
        from .config import table2
        return table2()
    if name == "ModelConfig":
        from .config import ModelConfig
        return ModelConfig
    raise AttributeError(f"module 'rpmnet' has no attribute {name!r}")
