"""One module per ``legrep`` subcommand (see :mod:`host.cli`)."""
