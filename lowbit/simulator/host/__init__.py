"""The host side of every format family: input checks (`inputs`), element rounding through the
compiled drivers (`elements`), scale rules (`scales`), the block pipeline (`blocks`), the public
quantize/encode/decode (`codec`), bit packing (`packing`) and the Hadamard transform (`transforms`)."""
