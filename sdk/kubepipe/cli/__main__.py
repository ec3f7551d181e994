from kubepipe.cli.app import main

main()
