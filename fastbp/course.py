"""The SPEC's default scenario (the course's values). Plain numbers: importing this is free."""

COURSE_INPUTS = (0.05, 0.1)
COURSE_TARGETS = (0.5, 0.5)
COURSE_WEIGHTS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)
REPORT_LRS = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)
