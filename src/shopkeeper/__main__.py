"""`python -m shopkeeper`: the same as the `shopkeeper` command."""

from shopkeeper.cli.main import main

main()
