from aepo.cli import main

main()
