// behavioural stand-ins for the Quartus-generated IP (lint only, never in a Quartus build)
ptile_ep.sv
reset_release.sv
