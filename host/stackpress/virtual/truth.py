"""The virtual fixture's truth file (`stackpress sim --truth FILE`): what the model knows and
no instrument could, a CSV row every few samples, to set beside what the firmware reports.
Its columns are named here and nowhere else; readers look them up by name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import FixtureModel


class TruthFile:
    def __init__(self, path: str | Path, n_cells: int, every: int = 8) -> None:
        self.every = max(1, int(every))  # a row every this many samples
        self.f = open(path, "w")
        self.f.write(
            "t_s,true_force_n,true_pressure_mpa,sensed_force_n,cell_thickness_um,"
            "temperature_c,drive_um,%strue_uniformity_pct,true_centre_x_mm,true_centre_y_mm\n"
            % "".join("true_force_ch%d_n," % i for i in range(n_cells))
        )

    def write(self, m: FixtureModel) -> None:
        self.f.write(
            "%.4f,%.4f,%.6f,%.4f,%.4f,%.3f,%.4f,"
            % (m.t_us / 1e6, m.force_n, m.force_n / m.area_mm2, m.sensed_n, m.cell_thickness_um(), m.temp_c, m.drive_um)
            + "".join("%.4f," % f for f in m.load_n())
            + "%.4f,%.4f,%.4f\n" % (m.uniformity_pct(), m.offset_mm[0], m.offset_mm[1])
        )

    def close(self) -> None:
        self.f.close()
