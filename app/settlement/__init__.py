"""Settlement: decide campaigns at their deadline, charge funded pledges exactly once, recover failures."""
