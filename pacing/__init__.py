"""Pure pacing maths and policies, plus the simulator. No I/O, no clock reads: time is passed in."""
