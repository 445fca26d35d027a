"""One module per ``colorcli`` subcommand; each imports its heavy dependencies lazily."""
