"""`python -m terradream.cli`: the `terradream` command without the installed script."""

from terradream.cli.main import main

main()
