"""`deeplocal cost`: cloud API vs owned hardware, from measured capacity. Pure functions; the CLI formats."""
