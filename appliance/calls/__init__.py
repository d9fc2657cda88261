"""The call path: routing decisions compiled into the dialplan, calls followed over AMI and
reconciled from CDRs, and the call records."""
