"""The virtual fixture spins on lockstep replies only while the machine has a core to spare."""

from stackpress.virtual.sim import cpu_to_spare

QUIET = "some avg10=1.07 avg60=4.06 avg300=21.15 total=2847188173\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
BUSY = "some avg10=54.59 avg60=17.02 avg300=20.17 total=2858951448\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def test_spins_on_a_quiet_machine_and_sleeps_on_a_busy_one(tmp_path):
    # the two figures as read here during the soak's long run: alone, and beside two `yes`
    psi = tmp_path / "cpu"
    psi.write_text(QUIET)
    assert cpu_to_spare(psi)
    psi.write_text(BUSY)
    assert not cpu_to_spare(psi)


def test_spins_where_the_kernel_keeps_no_cpu_pressure(tmp_path):
    assert cpu_to_spare(tmp_path / "absent")
    odd = tmp_path / "odd"
    odd.write_text("nothing like it\n")
    assert cpu_to_spare(odd)
