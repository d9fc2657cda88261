"""No egress, proven: netns_call_life.py runs a call's whole life in a network namespace of
its own, where everything not for loopback leaves through an interface that a packet socket
watches. Its tests count what the appliance tried to send off the box: nothing, or,
with a webhook turned on, exactly the webhook's connection."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.harness import REPO

# loopback, and one end of a veth pair behind the default routes (IPv4 and IPv6), without ARP
# so that every packet is sent at once; the other end has no address and drops it
NAMESPACE = """
set -e
ip link set lo up
ip link add egress0 type veth peer name egress1
ip link set egress0 arp off
ip link set egress0 addrgenmode none
ip link set egress1 addrgenmode none
ip link set egress1 up
ip addr add 192.0.2.1/24 dev egress0
ip -6 addr add 2001:db8::1/64 dev egress0 nodad
ip link set egress0 up
ip route add default dev egress0
ip -6 route add default dev egress0
exec "$@"
"""


def test_nothing_leaves_the_box_but_the_flows_an_admin_turned_on(tmp_path, netns):
    env = {**os.environ, "APPLIANCE_EGRESS_IFACE": "egress0"}
    result = subprocess.run(
        netns(NAMESPACE, sys.executable, "-m", "pytest",
              "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "inner"),
              str(REPO / "tests" / "integration" / "netns_call_life.py")),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert "2 passed" in result.stdout, report
