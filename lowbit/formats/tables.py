"""Published code tables, copied as data with their sources. Nothing here is computed by lowbit."""

from __future__ import annotations

# bitsandbytes' NF4 table (QLoRA, Dettmers et al. 2023): create_normal_map(offset=0.9677083) in
# float32, as the library ships it.
NF4 = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
)  # fmt: skip

# NF3 (AFPQ, Zhang et al. 2023, Appendix A).
NF3 = (
    -1.0, -0.5350227355957031, -0.246931403875351, 0.0, 0.1833375245332718, 0.3819939494132996,
    0.6229856610298157, 1.0,
)  # fmt: skip

# FP3 E2M0 as AFPQ uses it (Zhang et al. 2023, Appendix A): one zero, seven codes.
FP3_E2M0 = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)

TERNARY = (-1.0, 0.0, 1.0)
BINARY = (-1.0, 1.0)
