"""`python -m shoal`: the same command as the `shoal` console script."""

from shoal.entry import main

main()
