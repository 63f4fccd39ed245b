from byoc.cli.main import main

main()
