"""Units and conversions (glassjax works in Å, eV, eV/Å, ps, K, amu).

Constants come from ``ase.units`` (ASE's default table, which differs from CODATA 2018 in
the 8th digit for some constants), so glassjax and ASE agree exactly.
"""

from __future__ import annotations

import ase.units as _u

#: Boltzmann constant, eV/K.
KB = _u.kB
#: 1 eV/Å^3 in GPa.
EV_PER_A3_TO_GPA = 1.0 / _u.GPa
#: 1 GPa in bar.
GPA_TO_BAR = 1.0e4
#: 1 eV/Å^3 in bar.
EV_PER_A3_TO_BAR = EV_PER_A3_TO_GPA * GPA_TO_BAR
#: Time unit in which F = m a holds with eV, Å, amu: 1 ps = PS of those units.
PS = 1000.0 * _u.fs
#: amu·Å²/ps² in eV (kinetic energy of masses in amu and velocities in Å/ps).
AMU_A2_PER_PS2_TO_EV = (1.0 / PS) ** 2
#: g/cm^3 from amu/Å^3.
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def gpa_to_ev_per_a3(p_gpa):
    return p_gpa / EV_PER_A3_TO_GPA


def bar_to_ev_per_a3(p_bar):
    return p_bar / EV_PER_A3_TO_BAR
