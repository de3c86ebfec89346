"""Register and field descriptors used by the generated map (``sw/regs/_generated``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    """A bit field: ``lsb``/``width`` inside a 32-bit register; ``sw`` is ro, rw, wo or rw1c."""

    name: str
    lsb: int
    width: int
    sw: str
    reset: int | None
    desc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int, field_value: int) -> int:
        if field_value >> self.width:
            raise ValueError(f"{field_value:#x} does not fit field {self.name} ({self.width} bits)")
        return (value & ~self.mask) | (field_value << self.lsb)


@dataclass(frozen=True, slots=True)
class Reg:
    """A 32-bit register at ``offset`` (relative to its block)."""

    name: str
    offset: int
    fields: tuple[Field, ...]
    desc: str

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}")

    @property
    def reset(self) -> int:
        return sum((f.reset or 0) << f.lsb for f in self.fields)

    def pack(self, **fields: int) -> int:
        """Value with the named fields set and every other field at its reset value."""
        value = self.reset
        for name, v in fields.items():
            value = self.field(name).put(value, v)
        return value

    def unpack(self, value: int) -> dict[str, int]:
        return {f.name: f.get(value) for f in self.fields}
