"""One module per ``legrep`` subcommand (see :mod:`legrep.cli`)."""
