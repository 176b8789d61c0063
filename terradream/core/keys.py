"""The identity of a tile: (world, z, x, y)."""

from typing import NamedTuple


class TileKey(NamedTuple):
    """One 256 px XYZ tile of one world; x is already wrapped into [0, 2^z)."""

    world: str
    z: int
    x: int
    y: int

    def parent(self) -> "TileKey":
        """The tile one zoom coarser that contains this one."""
        return TileKey(self.world, self.z - 1, self.x // 2, self.y // 2)

    def children(self) -> list["TileKey"]:
        """The four tiles one zoom finer, row-major (NW, NE, SW, SE)."""
        z, x, y = self.z + 1, 2 * self.x, 2 * self.y
        return [TileKey(self.world, z, x + dx, y + dy) for dy in (0, 1) for dx in (0, 1)]
