"""RPM-Net model: embedding (rows 1-105), matching (rows 106-109), RPMNet, Table 1 measured."""
