"""`python -m memberscore` runs the CLI (used to start the score API from the demo)."""

from pipelines.cli import main

main()
