"""Pure values and rules: what a render asks for and how it is planned. No I/O, no Trio."""
